import pytest
from django.test import override_settings

from tests.support.oidc_provider.server import (
    OidcProvider,
    ProviderUnavailableError,
    ensure_installed,
)


@pytest.fixture(scope="session")
def oidc_provider(gateway, tmp_path_factory):
    """A real OpenID Connect provider (npm oidc-provider) on loopback."""
    try:
        ensure_installed()
    except ProviderUnavailableError as exc:
        pytest.skip(f"OpenID Connect provider unavailable: {exc}")
    provider = OidcProvider(
        tmp_path_factory.mktemp("oidc"), f"{gateway.url}/sso/callback/"
    )
    yield provider
    provider.stop()


@pytest.fixture
def sso_enabled(oidc_provider):
    """Point single sign-on at the test provider for one test."""
    with override_settings(**oidc_provider.settings()):
        yield oidc_provider
