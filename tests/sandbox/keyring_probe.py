"""Key and inotify probes run inside sandboxes and functions (x86-64 syscall numbers, via ctypes).

Kept as source text: tests embed ``PROBES`` in the code they run.
"""

PROBES = r'''
import ctypes, errno, os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
RINGS = {"session": -3, "user": -4, "user_session": -5}

def _err():
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def add_key(description, ring, payload=b"secret"):
    key = _libc.syscall(248, b"user", description.encode(), payload, len(payload), RINGS[ring])
    return key if key >= 0 else _err()

def read_key(key):
    buffer = ctypes.create_string_buffer(256)
    size = _libc.syscall(250, 11, ctypes.c_long(key), buffer, 256)  # KEYCTL_READ
    return buffer.raw[:size].decode() if size >= 0 else _err()

def search(description, ring):
    key = _libc.syscall(250, 10, RINGS[ring], b"user", description.encode(), 0)  # KEYCTL_SEARCH
    return key if key >= 0 else _err()

HELD = []

def exhaust():
    """Hold as many inotify instances and keys as this uid may; returns how many and why it stopped."""
    instances = keys = 0
    inotify_error = key_error = None
    while instances < 100000:
        fd = _libc.inotify_init1(0o2000000)
        if fd < 0:
            inotify_error = _err()
            break
        HELD.append(fd)
        instances += 1
    while keys < 100000:
        key = add_key(f"filler-{keys}", "session", b"x" * 16)
        if isinstance(key, str):
            key_error = key
            break
        keys += 1
    return {"inotify": instances, "inotify_error": inotify_error, "keys": keys, "key_error": key_error}

def can_still():
    fd = _libc.inotify_init1(0o2000000)
    inotify = "ok" if fd >= 0 else _err()
    if fd >= 0:
        os.close(fd)
    key = add_key("probe", "session")
    return {"inotify": inotify, "add_key": "ok" if isinstance(key, int) else key}
'''
