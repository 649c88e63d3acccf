from decimal import Decimal

from apps.iam.changelog import MASK
from apps.iam.models import AdminAuditLog
from apps.providers.models import ProviderConnection
from apps.providers.services import read_credential
from tests.api.conftest import client_for


def test_credential_is_write_only(world):
    client = client_for(world.members["superuser"])

    created = client.post(
        "/api/v1/provider-connections/",
        {"name": "openai-prod", "provider_type": "openai", "credential": "sk-live-123"},
        format="json",
    )
    listed = client.get("/api/v1/provider-connections/")

    assert created.status_code == 201, created.content
    assert "credential" not in created.json()
    assert created.json()["has_credential"] is True
    assert "sk-live-123" not in created.content.decode()
    assert "sk-live-123" not in listed.content.decode()
    connection = ProviderConnection.objects.get(name="openai-prod")
    assert read_credential(connection) == "sk-live-123"
    assert "sk-live-123" not in connection.credential_ciphertext


def test_credential_is_replaced_and_cleared(world):
    client = client_for(world.members["superuser"])
    connection = world.rows["connection"]

    client.patch(
        f"/api/v1/provider-connections/{connection.pk}/",
        {"credential": "sk-new"},
        format="json",
    )
    connection.refresh_from_db()
    assert read_credential(connection) == "sk-new"

    cleared = client.patch(
        f"/api/v1/provider-connections/{connection.pk}/",
        {"credential": ""},
        format="json",
    )
    assert cleared.json()["has_credential"] is False


def test_patch_without_credential_keeps_it(world):
    client = client_for(world.members["superuser"])
    connection = world.rows["connection"]
    client.patch(
        f"/api/v1/provider-connections/{connection.pk}/",
        {"credential": "sk-keep"},
        format="json",
    )

    client.patch(
        f"/api/v1/provider-connections/{connection.pk}/",
        {"region": "eu"},
        format="json",
    )

    connection.refresh_from_db()
    assert read_credential(connection) == "sk-keep"
    assert connection.region == "eu"


def test_audit_log_masks_credential(world):
    client = client_for(world.members["superuser"])
    connection = world.rows["connection"]

    client.patch(
        f"/api/v1/provider-connections/{connection.pk}/",
        {"credential": "sk-audit"},
        format="json",
    )

    entry = AdminAuditLog.objects.get(action="providers:connection.update")
    assert entry.channel == "api"
    assert entry.before["credential_ciphertext"] == ""
    assert entry.after["credential_ciphertext"] == MASK
    assert "sk-audit" not in str(entry.after)


def test_invalid_provider_type_is_rejected(world):
    client = client_for(world.members["superuser"])

    response = client.post(
        "/api/v1/provider-connections/",
        {"name": "x", "provider_type": "acme-llm"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_connection_in_use_cannot_be_deleted(world):
    client = client_for(world.members["superuser"])

    response = client.delete(
        f"/api/v1/provider-connections/{world.rows['connection'].pk}/"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "in_use"


def test_models_show_prices(world):
    client = client_for(world.members["developer"])
    model = world.rows["model"]

    response = client.get(f"/api/v1/models/{model.pk}/")

    assert Decimal(response.json()["input_price"]) == Decimal("1.5")
    assert Decimal(response.json()["output_price"]) == Decimal("3")


def test_model_alias_clash_is_rejected(world):
    client = client_for(world.members["superuser"])

    response = client.post(
        "/api/v1/models/",
        {
            "name": "new-model",
            "aliases": [world.rows["model"].name],
            "connection": world.rows["connection"].pk,
            "upstream_model": "x",
        },
        format="json",
    )

    assert response.status_code == 400
