"""SigV4 for the direct Bedrock client: botocore's credential chain and botocore's signer.

Nothing of SigV4 is written here. ``botocore.auth.SigV4Auth`` does all of it; this module hands
it a lighter request object, keeps one signer per set of frozen credentials, and lets that
signer remember what is the same for every request of a day: the signing key derived from the
secret (four HMACs), and the canonical form of each URL path. ``tests/providers`` checks the
headers against a plain ``SigV4Auth``'s, byte for byte.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol, cast

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError

from gateway.errors import UpstreamDenied
from gateway.providers.bedrock_errors import translate

# The service model's signingName; its endpoint prefix (bedrock-runtime) is not what is signed.
SIGNING_NAME = "bedrock"
NO_CREDENTIALS = "the gateway has no AWS credentials for the bedrock provider"


class Credentials(Protocol):
    """aiobotocore's credentials (static, refreshable or deferred) as the chain returns them."""

    async def get_frozen_credentials(self) -> ReadOnlyCredentials: ...


class _SigningRequest:
    """The attributes ``SigV4Auth.add_auth`` reads and writes on an ``AWSRequest``.

    ``AWSRequest`` keeps headers in an ``email.message``-based mapping and re-prepares itself on
    every ``.body`` read, which makes signing cost about twice as much. A plain dict is enough
    here: we choose every header name ourselves, so no case-insensitive lookup is needed.
    """

    __slots__ = ("body", "context", "headers", "method", "params", "url")

    def __init__(self, url: str, headers: dict[str, str], body: bytes) -> None:
        self.method = "POST"
        self.url = url
        self.headers = headers
        self.body = body
        self.params: dict[str, str] = {}
        self.context: dict[str, Any] = {}


class _Headers(dict[str, str]):
    """What ``SigV4Auth.headers_to_sign`` returns, without its ``email.message`` mapping: the
    request's header names are our own and distinct, so each has exactly one value."""

    def get_all(self, name: str) -> list[str]:
        return [self[name]]


class _Internals(Protocol):
    """The members of ``SigV4Auth`` used below that botocore's type stubs leave out."""

    def _sign(self, key: bytes, msg: str, hex: bool = False) -> Any: ...

    def _normalize_url_path(self, path: str) -> str: ...


class _CachingSigV4(SigV4Auth):
    """``SigV4Auth`` for one set of frozen credentials, reusing the per-day signing key."""

    def __init__(self, credentials: ReadOnlyCredentials, service_name: str, region: str) -> None:
        super().__init__(credentials, service_name, region)
        self._scope = (region, service_name, "aws4_request")
        self._day = ""
        self._key = b""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        # SIGNED_HEADERS_BLACKLIST names none of ours; every request carries its Host.
        return _Headers((name.lower(), value) for name, value in request.headers.items())

    def _normalize_url_path(self, path: str) -> str:
        return _normalized_path(path)

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        sign = cast(_Internals, self)._sign
        day = request.context["timestamp"][0:8]
        if day != self._day:
            # The derivation as SigV4Auth.signature does it, kept for the rest of the day.
            key = sign(f"AWS4{self.credentials.secret_key}".encode(), day)
            for part in self._scope:
                key = sign(key, part)
            self._day, self._key = day, key
        return str(sign(self._key, string_to_sign, hex=True))


# Only its path normalisation is used, which reads no credentials.
_PLAIN = cast(_Internals, SigV4Auth(ReadOnlyCredentials("", "", None), SIGNING_NAME, "us-east-1"))


@lru_cache(maxsize=512)
def _normalized_path(path: str) -> str:
    return _PLAIN._normalize_url_path(path)


class Signer:
    def __init__(self, credentials: Credentials | None, region: str) -> None:
        self._credentials = credentials
        self._region = region
        self._frozen: ReadOnlyCredentials | None = None
        self._auth: _CachingSigV4 | None = None

    async def headers(self, url: str, host: str, body: bytes) -> dict[str, str]:
        """Signed headers for one attempt (re-signed on retries, as botocore does).

        ``host`` is sent as is, so the Host header on the wire is the one that was signed.
        """
        if self._credentials is None:
            raise UpstreamDenied(NO_CREDENTIALS)
        try:
            # Refreshable credentials refresh here, under aiobotocore's own lock.
            frozen = await self._credentials.get_frozen_credentials()
        except BotoCoreError as exc:
            raise translate(exc) from exc
        if self._auth is None or frozen != self._frozen:
            self._auth = _CachingSigV4(frozen, SIGNING_NAME, self._region)
            self._frozen = frozen
        request = _SigningRequest(url, {"Host": host, "Content-Type": "application/json"}, body)
        self._auth.add_auth(cast(AWSRequest, request))
        return request.headers
