"""The forwarding header: signed by one node, verified by another with the key they share; anything else
is refused."""

from __future__ import annotations

from typing import Any

from lambdad.cluster.forwarding import Origin, Signer


def scope(**changes: Any) -> dict[str, Any]:
    base = {
        "method": "POST",
        "raw_path": b"/2015-03-31/functions/f/invocations",
        "path": "/2015-03-31/functions/f/invocations",
        "query_string": b"Qualifier=1",
        "client": ("203.0.113.9", 51234),
        "server": ("127.0.0.1", 9000),
        "scheme": "http",
    }
    return {**base, **changes}


def test_a_signed_request_verifies_with_the_shared_key_and_carries_its_origin() -> None:
    mark = Signer(b"k" * 32).sign(scope())
    assert Signer(b"k" * 32).verify(scope(client=("127.0.0.1", 40000)), mark) == Origin(
        "203.0.113.9", 9000, "http"
    )


def test_another_key_another_request_or_a_changed_origin_does_not_verify() -> None:
    mark = Signer(b"k" * 32).sign(scope())
    assert Signer(b"x" * 32).verify(scope(), mark) is None
    assert Signer(b"k" * 32).verify(scope(query_string=b"Qualifier=2"), mark) is None
    assert Signer(b"k" * 32).verify(scope(method="GET"), mark) is None
    tampered = mark.replace(b"203.0.113.9", b"198.51.100.1")
    assert Signer(b"k" * 32).verify(scope(), tampered) is None
    assert Signer(b"k" * 32).verify(scope(), b"garbage") is None
