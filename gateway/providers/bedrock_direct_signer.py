"""SigV4 for the direct Bedrock client: botocore's credential chain and botocore's signer.

Nothing of SigV4 is written here. ``botocore.auth.SigV4Auth`` does all of it; this module only
hands it a lighter request object and keeps one signer per set of frozen credentials.
"""

from __future__ import annotations

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


class Signer:
    def __init__(self, credentials: Credentials | None, region: str) -> None:
        self._credentials = credentials
        self._region = region
        self._frozen: ReadOnlyCredentials | None = None
        self._auth: SigV4Auth | None = None

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
            self._auth = SigV4Auth(frozen, SIGNING_NAME, self._region)
            self._frozen = frozen
        request = _SigningRequest(url, {"Host": host, "Content-Type": "application/json"}, body)
        self._auth.add_auth(cast(AWSRequest, request))
        return request.headers
