"""Responses match the OpenAPI schema that the API publishes."""

import pytest
import yaml
from openapi_schema_validator import OAS30ReadValidator
from rest_framework.test import APIClient

from tests.api.conftest import client_for


@pytest.fixture
def components(db) -> dict:
    document = yaml.safe_load(APIClient().get("/api/schema/").content)
    return document["components"]["schemas"]


def validator_for(components: dict, name: str) -> OAS30ReadValidator:
    return OAS30ReadValidator(
        components[name], format_checker=OAS30ReadValidator.FORMAT_CHECKER
    )


def test_user_without_email_matches_schema(world, components):
    target = world.rows["target"]

    response = client_for(world.members["org_owner"]).get(f"/api/v1/users/{target.pk}/")

    assert response.json()["email"] == ""
    validator_for(components, "User").validate(response.json())


def test_schema_rejects_malformed_email(components):
    user = {"id": 1, "username": "u", "email": "not-an-address", "is_active": True}

    assert not validator_for(components, "User").is_valid(user)
