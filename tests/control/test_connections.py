"""Provider connections are validated against their provider type when saved."""

import pytest
from django.core.exceptions import ValidationError

from apps.providers.models import ProviderConnection


@pytest.mark.parametrize(
    "provider_type,base_url,options,message",
    [
        ("openai", "", {"bogus": 1}, "Unknown option"),
        ("openai_compatible", "", {}, "needs a base URL"),
        ("azure", "", {}, "needs a base URL"),
        ("anthropic", "", {"thinking_mode": "sideways"}, "thinking_mode"),
        ("openai", "", [], "JSON object"),
    ],
)
def test_invalid_connection_settings_rejected(
    provider_type, base_url, options, message
):
    row = ProviderConnection(
        name="c", provider_type=provider_type, base_url=base_url, options=options
    )

    with pytest.raises(ValidationError, match=message):
        row.clean()


def test_unknown_provider_type_rejected():
    row = ProviderConnection(name="c", provider_type="acme", base_url="")

    with pytest.raises(ValidationError, match="not a valid choice"):
        row.clean_fields(exclude=["name"])


def test_valid_connection_passes():
    row = ProviderConnection(
        name="c",
        provider_type="anthropic",
        base_url="",
        options={"thinking_mode": "adaptive"},
    )

    row.clean()
