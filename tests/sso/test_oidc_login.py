"""Sign in end to end through a real OpenID Connect provider on loopback.

The provider is the npm package oidc-provider in a separate Node process. The
client is httpx, which submits the provider's login and consent forms like a browser.
The gateway (uvicorn in a thread) serves the Django side.
"""

import base64
import hashlib
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore

from apps.iam.context import SESSION_CLAIMS_KEY
from apps.iam.models import Membership
from apps.iam.selectors import roles_for
from apps.iam.services import create_group
from apps.sso.models import ClaimMapping, OidcIdentity
from tests.iam.factories import make_org
from tests.sso.flow import Browser, replace_query

PASSWORD = "correct horse battery"


@pytest.fixture
def browser(gateway):
    client = Browser(gateway.url)
    yield client
    client.close()


def new_login(provider, groups: list[str], *, mfa: bool = False) -> str:
    login = f"person-{uuid.uuid4().hex[:8]}"
    provider.add_account(
        login,
        password=PASSWORD,
        email=f"{login}@example.test",
        groups=groups,
        mfa=mfa,
    )
    return login


def claim() -> str:
    return f"idp-group-{uuid.uuid4().hex[:8]}"


def session_of(browser: Browser) -> dict:
    return SessionStore(session_key=browser.session_key).load()


def test_first_login_creates_user_with_mapped_roles(sso_enabled, browser, db_rows):
    org = make_org()
    admins = claim()
    ClaimMapping.objects.create(claim_value=admins, organization=org, role="org_admin")
    login = new_login(sso_enabled, [admins, "unmapped-group"], mfa=True)

    response = browser.sign_in(login, PASSWORD)

    assert response.status_code == 302
    assert response.headers["location"] == "/admin/"
    user = get_user_model().objects.get(email=f"{login}@example.test")
    assert user.username == f"{login}@example.test"
    assert user.first_name == "Test"
    assert user.is_staff
    assert not user.has_usable_password()
    assert OidcIdentity.objects.filter(
        issuer=sso_enabled.issuer, subject=login, user=user
    ).exists()
    assert [(g.role, g.source) for g in roles_for(user, org)] == [("org_admin", "oidc")]
    session = session_of(browser)
    assert session[SESSION_KEY] == str(user.pk)
    assert session[SESSION_CLAIMS_KEY] == {"amr": ["pwd", "mfa"]}
    signed_in = browser.client.get(f"{browser.gateway_url}/api/v1/roles/")
    assert signed_in.status_code == 200


def test_unmapped_login_shows_rejection_page(sso_enabled, browser, db_rows):
    login = new_login(sso_enabled, [claim()])

    response = browser.sign_in(login, PASSWORD)

    assert response.status_code == 403
    assert 'data-reason="no_role"' in response.text
    assert "not mapped to any role" in response.text
    assert not get_user_model().objects.filter(email=f"{login}@example.test").exists()
    assert SESSION_KEY not in session_of(browser)


def test_each_login_resyncs_roles_and_mapped_groups(sso_enabled, gateway, db_rows):
    org = make_org()
    admins, viewers, devs = claim(), claim(), claim()
    ClaimMapping.objects.create(claim_value=admins, organization=org, role="org_admin")
    ClaimMapping.objects.create(claim_value=viewers, organization=org, role="viewer")
    group = create_group(
        org, f"devs-{uuid.uuid4().hex[:6]}", roles=[("developer", None)]
    )
    ClaimMapping.objects.create(claim_value=devs, organization=org, group=group)
    login = new_login(sso_enabled, [admins, devs])
    first = Browser(gateway.url)
    assert first.sign_in(login, PASSWORD).status_code == 302
    user = get_user_model().objects.get(email=f"{login}@example.test")
    assert group.members.filter(pk=user.pk).exists()

    sso_enabled.add_account(
        login, password=PASSWORD, email=f"{login}@example.test", groups=[viewers]
    )
    second = Browser(gateway.url)
    response = second.sign_in(login, PASSWORD)

    assert response.status_code == 302
    held = sorted((g.role, g.source) for g in roles_for(user, org))
    assert held == [("viewer", "oidc")]
    assert not group.members.filter(pk=user.pk).exists()
    assert get_user_model().objects.filter(email=f"{login}@example.test").count() == 1
    first.close()
    second.close()


def test_login_that_loses_every_mapping_revokes_oidc_roles(
    sso_enabled, gateway, db_rows
):
    org = make_org()
    viewers = claim()
    ClaimMapping.objects.create(claim_value=viewers, organization=org, role="viewer")
    login = new_login(sso_enabled, [viewers])
    first = Browser(gateway.url)
    assert first.sign_in(login, PASSWORD).status_code == 302
    user = get_user_model().objects.get(email=f"{login}@example.test")

    sso_enabled.add_account(
        login, password=PASSWORD, email=f"{login}@example.test", groups=[]
    )
    second = Browser(gateway.url)
    response = second.sign_in(login, PASSWORD)

    assert response.status_code == 403
    assert not Membership.objects.filter(user=user, source="oidc").exists()
    first.close()
    second.close()


def test_authorization_request_uses_pkce_s256_state_and_nonce(sso_enabled, browser):
    url = browser.start()

    params = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(sso_enabled.metadata["authorization_endpoint"])
    assert params["code_challenge_method"] == "S256"
    assert params["response_type"] == "code"
    stored = session_of(browser)["oidc_states"][params["state"]]
    assert stored["nonce"] == params["nonce"]
    digest = hashlib.sha256(stored["code_verifier"].encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    assert params["code_challenge"] == expected


def test_wrong_pkce_challenge_fails_token_exchange(sso_enabled, browser, db_rows):
    org = make_org()
    viewers = claim()
    ClaimMapping.objects.create(claim_value=viewers, organization=org, role="viewer")
    login = new_login(sso_enabled, [viewers])
    other = base64.urlsafe_b64encode(hashlib.sha256(b"x" * 64).digest())
    forged = other.rstrip(b"=").decode("ascii")

    response = browser.sign_in(
        login, PASSWORD, tamper=lambda url: replace_query(url, code_challenge=forged)
    )

    assert response.status_code == 502
    assert 'data-reason="provider_error"' in response.text
    assert not get_user_model().objects.filter(email=f"{login}@example.test").exists()


def test_nonce_mismatch_is_rejected(sso_enabled, browser, db_rows):
    org = make_org()
    viewers = claim()
    ClaimMapping.objects.create(claim_value=viewers, organization=org, role="viewer")
    login = new_login(sso_enabled, [viewers])

    response = browser.sign_in(
        login, PASSWORD, tamper=lambda url: replace_query(url, nonce="forged-nonce")
    )

    assert response.status_code == 400
    assert 'data-reason="invalid_response"' in response.text
    assert not get_user_model().objects.filter(email=f"{login}@example.test").exists()


def test_callback_with_unknown_state_is_rejected(sso_enabled, browser, db_rows):
    org = make_org()
    viewers = claim()
    ClaimMapping.objects.create(claim_value=viewers, organization=org, role="viewer")
    login = new_login(sso_enabled, [viewers])
    assert browser.sign_in(login, PASSWORD).status_code == 302

    replayed = browser.client.get(browser.callback_url)
    forged = browser.client.get(replace_query(browser.callback_url, state="forged"))

    assert replayed.status_code == 400
    assert forged.status_code == 400
    assert 'data-reason="invalid_response"' in forged.text
