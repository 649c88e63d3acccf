"""The admin login page's SSO button and the SSO views when SSO is off or on."""

import pytest
from django.test import override_settings

ENABLED = {
    "NEXUS_OIDC_ENABLED": True,
    "NEXUS_OIDC_ISSUER": "https://idp.example.test",
    "OIDC_RP_CLIENT_ID": "nexus",
    "OIDC_RP_CLIENT_SECRET": "secret",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://idp.example.test/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://idp.example.test/token",
    "OIDC_OP_USER_ENDPOINT": "https://idp.example.test/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://idp.example.test/jwks",
}
DISABLED = {"NEXUS_OIDC_ENABLED": False}


@pytest.mark.django_db
@override_settings(**ENABLED)
def test_login_page_offers_sso_when_configured(client):
    response = client.get("/admin/login/?next=/admin/keys/")

    assert response.status_code == 200
    assert "Sign in with SSO" in response.text
    assert "/sso/login/?next=%2Fadmin%2Fkeys%2F" in response.text


@pytest.mark.django_db
@override_settings(**DISABLED)
def test_login_page_hides_sso_when_not_configured(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert "Sign in with SSO" not in response.text


@pytest.mark.django_db
@override_settings(**DISABLED)
def test_sso_views_are_not_found_when_not_configured(client):
    assert client.get("/sso/login/").status_code == 404
    assert client.get("/sso/callback/?code=x&state=y").status_code == 404


@pytest.mark.django_db
@override_settings(**ENABLED)
def test_sso_login_redirects_to_provider(client):
    response = client.get("/sso/login/?next=/admin/")

    location = response.headers["location"]
    assert response.status_code == 302
    assert location.startswith("https://idp.example.test/authorize?")
    assert "code_challenge_method=S256" in location
    assert "nonce=" in location
    assert "state=" in location


@pytest.mark.django_db
@override_settings(**ENABLED)
def test_callback_without_login_is_rejected(client):
    response = client.get("/sso/callback/?code=abc&state=def")

    assert response.status_code == 400
    assert 'data-reason="incomplete"' in response.text


@pytest.mark.django_db
@override_settings(**ENABLED)
def test_provider_error_is_rejected(client):
    client.get("/sso/login/")

    response = client.get("/sso/callback/?error=access_denied&state=whatever")

    assert response.status_code == 400
    assert "Start it again" in response.text


@pytest.mark.django_db
@override_settings(**ENABLED)
def test_password_login_still_works(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.test", "pw-123456")

    response = client.post(
        "/admin/login/",
        {"username": "root", "password": "pw-123456", "next": "/admin/"},
    )

    assert response.status_code == 302
    assert response.headers["location"] == "/admin/"
