"""Fake Azure OpenAI: chat completions and embeddings on deployments, and Entra ID tokens.

Routes:

- ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
- ``POST /openai/deployments/{deployment}/embeddings?api-version=...``
- ``POST /{tenant}/oauth2/v2.0/token``: the Microsoft Entra ID client credentials
  grant (vendor ``entra``); the expected key is the client secret.

Deployment requests need ``api-key`` or ``Authorization: Bearer``; a missing or
wrong key gets Azure's 401. A missing api-version gets 404 Resource not found. The
responses are the fake OpenAI's, plus Azure's content filter annotations:
``prompt_filter_results`` on the completion (and on a first streamed chunk with no
choices) and ``content_filter_results`` on each choice. The model field holds the
deployment name. Errors are ``{"error": {"code", "message"}}``; a scripted error's
type becomes the code, so ``{"status": 400, "error": "content_filter"}`` plays a
prompt that the content filter blocked.
"""

import dataclasses
import hashlib
import logging
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs

from aiohttp import web

from nexus.fakeprovider.reply import compose_reply
from nexus.fakeprovider.vendors import openai as openai_shapes
from nexus.fakeprovider.vendors.base import (
    Call,
    Endpoint,
    Vendor,
    next_request_id,
    sse_event,
)
from nexus.fakeprovider.vendors.openai import OpenAIVendor

logger = logging.getLogger(__name__)

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
TOKEN_LIFETIME = 3599
SAFE = {"filtered": False, "severity": "safe"}
CONTENT_FILTER_RESULTS = {
    "hate": SAFE,
    "self_harm": SAFE,
    "sexual": SAFE,
    "violence": SAFE,
}
PROMPT_FILTER_RESULTS = [
    {"prompt_index": 0, "content_filter_results": CONTENT_FILTER_RESULTS}
]


def entra_token_for(client_id: str) -> str:
    """Return the access token the fake Entra ID issues to a client."""
    return (
        "eyJ0eXAiOiJKV1QifQ.fake-" + hashlib.sha256(client_id.encode()).hexdigest()[:24]
    )


class AzureOpenAIVendor(OpenAIVendor):
    """Azure OpenAI deployments under ``/openai/deployments``."""

    name: ClassVar[str] = "azure"
    request_id_header: ClassVar[str] = "apim-request-id"

    def endpoints(self) -> list[Endpoint]:
        """Return the chat completions and embeddings routes."""
        prefix = "/openai/deployments/{deployment}"
        return [
            Endpoint("POST", prefix + "/chat/completions", self.chat_completions),
            Endpoint("POST", prefix + "/embeddings", self.embeddings),
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing key, and a key or token that differs from the expected one."""
        key = headers.get("api-key", "").strip()
        if not key:
            scheme, _, token = headers.get("Authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else ""
        if not key:
            return self.error_response(
                401,
                "401",
                "Access denied due to missing subscription key. Make sure to include "
                "subscription key when making requests to an API.",
            )
        if expected_key is not None and key != expected_key:
            return self.error_response(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. "
                "Make sure to provide a valid key for an active subscription and use "
                "a correct regional API endpoint for your resource.",
            )
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return Azure's error object, whose code names the error."""
        error: dict[str, Any] = {"code": code or error_type, "message": message}
        if (code or error_type) == "content_filter":
            error["param"] = "prompt"
            error["status"] = 400
            error["innererror"] = {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    **CONTENT_FILTER_RESULTS,
                    "violence": {"filtered": True, "severity": "high"},
                },
            }
        return {"error": error}

    def _version_problem(self, call: Call) -> web.Response | None:
        version = call.request.query.get("api-version")
        if not version:
            return self.error_response(404, "404", "Resource not found")
        if not API_VERSION.match(version):
            return self.error_response(400, "BadRequest", "API version not supported")
        return None

    async def chat_completions(self, call: Call) -> web.StreamResponse:
        """Return a chat completion with content filter results, streamed on request."""
        problem = self._version_problem(call) or self.reject_body(call, "messages")
        if problem is not None:
            return problem

        deployment = call.request.match_info["deployment"]
        body = {**call.body, "model": deployment}
        reply = compose_reply(openai_shapes.chat_prompt(body), call.reply_override)
        completion_id = next_request_id("chatcmpl-azure")
        created = int(time.time())
        if not body.get("stream"):
            completion = openai_shapes.chat_completion(reply, completion_id, created)
            completion["prompt_filter_results"] = PROMPT_FILTER_RESULTS
            for choice in completion["choices"]:
                choice["content_filter_results"] = CONTENT_FILTER_RESULTS
            return self.json_response(completion)

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        first = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
        }
        events = [sse_event(first)]
        for chunk in openai_shapes.chat_chunks(
            reply, completion_id, created, include_usage
        ):
            for choice in chunk["choices"]:
                choice["content_filter_results"] = (
                    {} if choice["finish_reason"] else CONTENT_FILTER_RESULTS
                )
            events.append(sse_event(chunk))
        events.append(b"data: [DONE]\n\n")
        return await self.stream(call, events)

    async def embeddings(self, call: Call) -> web.StreamResponse:
        """Return the fake OpenAI's embeddings under the deployment's name."""
        problem = self._version_problem(call)
        if problem is not None:
            return problem
        if isinstance(call.body, dict):
            body = {"model": call.request.match_info["deployment"], **call.body}
            call = dataclasses.replace(call, body=body)
        return await super().embeddings(call)


class EntraVendor(Vendor):
    """Microsoft Entra ID's v2.0 token endpoint, client credentials grant only."""

    name: ClassVar[str] = "entra"

    def __init__(self) -> None:
        self.client_secret: str | None = None

    def endpoints(self) -> list[Endpoint]:
        """Return the token route."""
        return [Endpoint("POST", "/{tenant}/oauth2/v2.0/token", self.token)]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Accept every caller, because the client secret in the body is checked instead.

        The expected key is kept for the handler, which the server calls right
        after this method without yielding to other requests.
        """
        self.client_secret = expected_key
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return the OAuth error object."""
        return {"error": error_type, "error_description": message}

    async def token(self, call: Call) -> web.StreamResponse:
        """Exchange a client id and secret for an access token."""
        expected_secret = self.client_secret
        form = {
            name: values[0]
            for name, values in parse_qs((await call.request.read()).decode()).items()
        }
        if form.get("grant_type") != "client_credentials":
            return self.error_response(
                400,
                "unsupported_grant_type",
                "AADSTS70003: grant_type is not supported.",
            )
        missing = [
            name
            for name in ("client_id", "client_secret", "scope")
            if not form.get(name)
        ]
        if missing:
            return self.error_response(
                400,
                "invalid_request",
                f"AADSTS900144: The request body must contain {missing[0]}.",
            )
        if expected_secret is not None and form["client_secret"] != expected_secret:
            return self.error_response(
                401, "invalid_client", "AADSTS7000215: Invalid client secret provided."
            )
        return self.json_response(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": entra_token_for(form["client_id"]),
            }
        )
