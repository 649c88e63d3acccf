import pytest
import yaml
from django.core.management import call_command
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from tests.api.conftest import client_for

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def test_generated_schema_is_valid_openapi(tmp_path, db):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--file", str(target), "--fail-on-warn")

    document = yaml.safe_load(target.read_text())
    validate(document)
    assert document["openapi"].startswith("3.")
    assert "/api/v1/keys/{id}/rotate/" in document["paths"]
    assert "serviceToken" in document["components"]["securitySchemes"]


def test_credential_is_write_only_in_schema(db):
    document = yaml.safe_load(APIClient().get("/api/schema/").content)

    schemas = document["components"]["schemas"]
    assert "credential" in schemas["ProviderConnectionRequest"]["properties"]
    assert "credential" not in schemas["ProviderConnection"]["properties"]


def test_docs_pages_use_bundled_assets(db):
    swagger = APIClient().get("/api/docs/")
    redoc = APIClient().get("/api/redoc/")

    assert swagger.status_code == 200
    assert redoc.status_code == 200
    assert "drf_spectacular_sidecar" in swagger.content.decode()
    assert "cdn.jsdelivr.net" not in swagger.content.decode()


@pytest.fixture
def document(db) -> dict:
    return yaml.safe_load(APIClient().get("/api/schema/").content)


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def _follow(document: dict, node: dict) -> dict:
    """Return the object that a local $ref points to, or node itself."""
    while "$ref" in node:
        parts = node["$ref"].removeprefix("#/").split("/")
        node = document
        for part in parts:
            node = node[part]
    return node


def _documented_body(document: dict, path: str, method: str, status: int) -> dict:
    """Return the JSON schema of an operation's documented response body."""
    response = document["paths"][path][method]["responses"][str(status)]
    schema = _follow(document, response)["content"]["application/json"]["schema"]
    # Local $refs in the schema resolve against the document's components.
    return {**schema, "components": document["components"]}


def test_every_operation_documents_auth_errors(document):
    missing = [
        (name, status)
        for name, operation in _operations(document)
        for status in ("401", "403")
        if status not in operation["responses"]
    ]

    assert missing == []


def test_detail_operations_document_not_found(document):
    detail = {
        name: operation
        for name, operation in _operations(document)
        if any(p["in"] == "path" for p in operation.get("parameters", []))
    }

    missing = [name for name, op in detail.items() if "404" not in op["responses"]]

    assert detail
    assert missing == []


def test_conflicts_are_documented_where_they_occur(document):
    paths = document["paths"]

    assert "409" in paths["/api/v1/projects/"]["post"]["responses"]
    assert "409" in paths["/api/v1/provider-connections/{id}/"]["delete"]["responses"]
    assert "409" in paths["/api/v1/memberships/{id}/"]["delete"]["responses"]
    assert "409" not in paths["/api/v1/policies/{id}/"]["delete"]["responses"]
    assert "409" not in paths["/api/v1/keys/"]["get"]["responses"]


def test_error_component_rejects_other_bodies(document):
    validator = OAS30Validator(_documented_body(document, "/api/v1/keys/", "get", 401))

    assert not validator.is_valid({"detail": "Not found."})
    assert not validator.is_valid({"error": {"code": "not_found", "message": "x"}})


def _bad_request(world):
    client = client_for(world.members["org_owner"])
    body = {"organization": world.org.slug}
    return client.post("/api/v1/keys/", body, format="json")


def _unauthenticated(world):
    return APIClient().get("/api/v1/keys/")


def _forbidden(world):
    client = client_for(world.members["viewer"])
    return client.delete(f"/api/v1/keys/{world.rows['key_org'].pk}/")


def _not_found(world):
    return client_for(world.members["viewer"]).get("/api/v1/keys/999999999/")


def _conflict(world):
    client = client_for(world.members["org_owner"])
    body = {"organization": world.org.slug, "name": "dup", "slug": "dup"}
    client.post("/api/v1/projects/", body, format="json")
    return client.post("/api/v1/projects/", body, format="json")


@pytest.mark.parametrize(
    ("status", "path", "method", "send"),
    [
        (400, "/api/v1/keys/", "post", _bad_request),
        (401, "/api/v1/keys/", "get", _unauthenticated),
        (403, "/api/v1/keys/{id}/", "delete", _forbidden),
        (404, "/api/v1/keys/{id}/", "get", _not_found),
        (409, "/api/v1/projects/", "post", _conflict),
    ],
)
def test_real_error_body_matches_schema(world, document, status, path, method, send):
    schema = _documented_body(document, path, method, status)

    response = send(world)

    assert response.status_code == status
    OAS30Validator(schema).validate(response.json())
