"""Azure OpenAI codec: the OpenAI codec on Azure's deployment URLs and auth.

Requests go to
`{base_url}/openai/deployments/{deployment}/chat/completions?api-version={api_version}`
(and `/embeddings`), where base_url is the resource endpoint such as
https://my-resource.openai.azure.com and the deployment is the model's upstream id.

options.auth selects the credential:

- "api_key" (default): the credential is a resource key, sent as `api-key`.
- "entra_token": the credential is a Microsoft Entra ID access token, sent as a
  bearer token. It is used until Azure rejects it.
- "entra_client_credentials": the credential is a JSON object with tenant_id,
  client_id and client_secret. It is exchanged at options.token_url (default the
  tenant's Entra ID v2.0 token endpoint) for a token of options.scope, which is
  cached and refreshed before it expires.
"""

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from nexus.engine.canonical import EmbeddingsRequest
from nexus.engine.errors import ProviderError, ProviderStatusError
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.base import ERROR_TYPES
from nexus.engine.providers.oauth import TOKENS, ClientCredentialsGrant, CredentialError
from nexus.engine.providers.openai import OpenAIAdapter

logger = logging.getLogger(__name__)

# The latest generally available data-plane API version when this codec was written.
DEFAULT_API_VERSION = "2024-10-21"
ENTRA_TOKEN_URL = "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
AUTH_MODES = ("api_key", "entra_token", "entra_client_credentials")


@dataclass(frozen=True)
class AzureOptions:
    """Options of an Azure OpenAI connection.

    api_version is the `api-version` query parameter. Reasoning models and newer
    request fields need a newer (often preview) version than the default. token_url
    may contain `{tenant_id}`, which is filled from the credential.
    """

    api_version: str = DEFAULT_API_VERSION
    auth: str = "api_key"
    token_url: str = ENTRA_TOKEN_URL
    scope: str = COGNITIVE_SERVICES_SCOPE

    def __post_init__(self) -> None:
        if not isinstance(self.api_version, str) or not self.api_version:
            raise ValueError(
                f"api_version must be a non-empty string, got {self.api_version!r}"
            )
        if self.auth not in AUTH_MODES:
            raise ValueError(
                f"auth must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}"
            )
        if not isinstance(self.token_url, str) or not self.token_url.startswith(
            ("https://", "http://")
        ):
            raise ValueError(
                f"token_url must be an http(s) URL, got {self.token_url!r}"
            )
        if not isinstance(self.scope, str) or not self.scope:
            raise ValueError(f"scope must be a non-empty string, got {self.scope!r}")


class AzureOpenAIAdapter(OpenAIAdapter):
    """Azure OpenAI deployments."""

    name = "azure"
    default_base_url = ""
    requires_base_url = True
    options_class = AzureOptions
    options: AzureOptions

    def __init__(self, connection) -> None:
        super().__init__(connection)
        self.grant: ClientCredentialsGrant | None = None
        self.credential_error = ""
        if self.options.auth == "entra_client_credentials":
            # A bad credential fails its requests, not the config reload.
            try:
                self.grant = client_credentials_grant(
                    connection.credential, self.options
                )
            except CredentialError as exc:
                self.credential_error = str(exc)

    def auth_headers(self) -> dict[str, str]:
        credential = self.connection.credential
        if not credential or self.options.auth == "entra_client_credentials":
            return {}
        if self.options.auth == "entra_token":
            return {"authorization": f"Bearer {credential}"}
        return {"api-key": credential}

    def deployment_url(self, deployment: str, operation: str) -> str:
        if not self.base_url:
            raise ProviderError(
                f"Provider {self.connection.name} has no base URL: set it to the Azure "
                "resource endpoint, such as https://my-resource.openai.azure.com.",
                code="provider_misconfigured",
            )
        return (
            f"{self.base_url}/openai/deployments/{quote(deployment, safe='')}"
            f"/{operation}?api-version={quote(self.options.api_version, safe='')}"
        )

    def chat_url(self, upstream_model: str) -> str:
        return self.deployment_url(upstream_model, "chat/completions")

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return the OpenAI embeddings request on the deployment's URL."""
        upstream = super().build_embeddings_request(request, upstream_model)
        upstream.url = self.deployment_url(upstream_model, "embeddings")
        return upstream

    async def authorize(self, request: UpstreamRequest) -> None:
        """Add an Entra ID token when the connection uses client credentials."""
        if self.options.auth != "entra_client_credentials":
            return
        if self.grant is None:
            raise ProviderError(
                f"Provider {self.connection.name} has an invalid Entra ID client "
                f"credential: {self.credential_error}",
                code="invalid_provider_credential",
            )
        token = await TOKENS.token(self.grant, self.connection.name)
        request.headers["authorization"] = f"Bearer {token}"

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read Azure's `{error: {code, message}}`, keeping the code of content filter blocks.

        Azure rejects a prompt that its content filter blocked with HTTP 400 and code
        content_filter, which reaches the caller as that code.
        """
        error = _error_object(body)
        message = str(error.get("message") or "no error message")
        code = error.get("code")
        error_type = error.get("type")
        if not isinstance(error_type, str) or not error_type:
            error_type = ERROR_TYPES.get(status, "api_error")
        extra: dict[str, Any] = {}
        if code == "content_filter":
            extra["code"] = "content_filter"
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}: {message}",
            upstream_status=status,
            error_type=error_type,
            **extra,
        )


def client_credentials_grant(
    credential: str, options: AzureOptions
) -> ClientCredentialsGrant:
    """Read a `{tenant_id, client_id, client_secret}` credential, or raise CredentialError."""
    try:
        info = orjson.loads(credential)
    except orjson.JSONDecodeError:
        raise CredentialError(
            "Expected a JSON object with tenant_id, client_id and client_secret."
        ) from None
    if not isinstance(info, dict):
        raise CredentialError(
            "Expected a JSON object with tenant_id, client_id and client_secret."
        )
    missing = [
        name
        for name in ("tenant_id", "client_id", "client_secret")
        if not isinstance(info.get(name), str) or not info[name]
    ]
    if missing:
        raise CredentialError(f"The credential lacks {', '.join(missing)}.")
    return ClientCredentialsGrant(
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        token_url=options.token_url.replace(
            "{tenant_id}", quote(info["tenant_id"], safe="")
        ),
        scope=options.scope,
    )


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return {"message": text or "no error message"}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}
