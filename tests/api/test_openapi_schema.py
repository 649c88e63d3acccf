import yaml
from django.core.management import call_command
from openapi_spec_validator import validate
from rest_framework.test import APIClient


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
