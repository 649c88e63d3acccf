import pytest
from django.test import Client

from apps.scim.tokens import issue_scim_token
from tests.iam.factories import make_org

SCIM = "/scim/v2"


class ScimClient:
    """A Django test client that sends one organization's SCIM token."""

    def __init__(self, token: str) -> None:
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def request(self, method: str, path: str, body=None, **params):
        kwargs = {"content_type": "application/scim+json"}
        if body is not None:
            kwargs["data"] = body
        call = getattr(self.client, method.lower())
        if method.upper() in ("GET", "DELETE") and params:
            return call(SCIM + path, params)
        return call(SCIM + path, **kwargs) if body is not None else call(SCIM + path)

    def get(self, path: str, **params):
        return self.request("GET", path, **params)

    def post(self, path: str, body):
        return self.request("POST", path, body)

    def put(self, path: str, body):
        return self.request("PUT", path, body)

    def patch(self, path: str, operations):
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        }
        return self.request("PATCH", path, body)

    def delete(self, path: str):
        return self.request("DELETE", path)


@pytest.fixture
def org(db):
    return make_org()


@pytest.fixture
def other_org(db):
    return make_org()


@pytest.fixture
def scim(org) -> ScimClient:
    return ScimClient(issue_scim_token(org, name="idp").plaintext)


@pytest.fixture
def other_scim(other_org) -> ScimClient:
    return ScimClient(issue_scim_token(other_org, name="idp").plaintext)


def user_body(user_name: str, **fields) -> dict:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
    }
    body.update(fields)
    return body


def group_body(display_name: str, members=(), **fields) -> dict:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": display_name,
        "members": [{"value": member} for member in members],
    }
    body.update(fields)
    return body
