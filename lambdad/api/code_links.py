"""Download links for code packages (GetFunction's ``Code.Location``).

AWS answers with a presigned S3 URL valid for ten minutes; lambdad answers with a URL on itself,
signed the same way in spirit: an expiry and an HMAC over digest and expiry, so a link cannot be forged
or reused after it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

VALID_SECONDS = 600
PATH_PREFIX = "/_lambdad/code/"


class CodeLinks:
    """Signs and checks code download links with a server secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def url(self, base_url: str, sha256_hex: str, now: float | None = None) -> str:
        """A link valid for ten minutes."""
        expires = int((now if now is not None else time.time()) + VALID_SECONDS)
        signature = self._sign(sha256_hex, expires)
        return f"{base_url.rstrip('/')}{PATH_PREFIX}{sha256_hex}.zip?Expires={expires}&Signature={signature}"

    def verify(self, sha256_hex: str, expires: str, signature: str, now: float | None = None) -> bool:
        """Whether a link's signature is right and it has not expired."""
        try:
            expiry = int(expires)
        except ValueError:
            return False
        if expiry < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._sign(sha256_hex, expiry), signature)

    def _sign(self, sha256_hex: str, expires: int) -> str:
        return hmac.new(self._secret, f"{sha256_hex}:{expires}".encode(), hashlib.sha256).hexdigest()


def download_endpoint(
    links: CodeLinks, package_path: Callable[[str], Path]
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint behind the links: the zip if the link is valid, AWS-style 403 otherwise."""

    async def download(request: Request) -> Response:
        digest = request.path_params["digest"]
        valid = re.fullmatch(r"[0-9a-f]{64}", digest) and links.verify(
            digest, request.query_params.get("Expires", ""), request.query_params.get("Signature", "")
        )
        if not valid:
            return PlainTextResponse("Request has expired or its signature does not match.", 403)
        try:
            # A cluster node may fetch the package from the cluster's store first: not on the event loop.
            path = await anyio.to_thread.run_sync(package_path, digest)
        except FileNotFoundError:
            path = None
        if path is None or not path.exists():
            return PlainTextResponse("Request has expired or its signature does not match.", 403)
        return FileResponse(path, media_type="application/zip", filename=f"{digest}.zip")

    return download
