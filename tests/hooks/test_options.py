import pytest

from nexus.engine.hooks.options import HookConfigError
from nexus.engine.hooks.pipeline import HookSpec
from nexus.engine.hooks.registry import validate_spec


def spec(kind, stage="request", **options):
    return HookSpec(id=1, name="h", kind=kind, stage=stage, options=options)


def test_unknown_option_is_rejected_with_its_name():
    with pytest.raises(
        HookConfigError, match="Unknown option 'entites' for a pii hook"
    ):
        validate_spec(spec("pii", entites=["email"]))


def test_wrong_type_is_rejected():
    with pytest.raises(
        HookConfigError, match="'per_key' of a rate_limit hook must be of type int"
    ):
        validate_spec(spec("rate_limit", per_key="10"))


def test_unknown_choice_is_rejected():
    with pytest.raises(HookConfigError, match="invalid value 'passport'"):
        validate_spec(spec("pii", entities=["passport"]))


def test_invalid_regex_is_rejected():
    with pytest.raises(HookConfigError, match="invalid pattern"):
        validate_spec(spec("rules", rules=[{"id": "r1", "pattern": "(unclosed"}]))


def test_invalid_cidr_is_rejected():
    with pytest.raises(HookConfigError, match="not an IP address or CIDR range"):
        validate_spec(spec("ip_list", allow=["10.0.0.0/33"]))


def test_webhook_needs_a_url():
    with pytest.raises(HookConfigError, match="'url' is required"):
        validate_spec(spec("webhook"))


def test_webhook_cannot_run_on_response_stage():
    with pytest.raises(HookConfigError, match="cannot run on the response stage"):
        validate_spec(spec("webhook", stage="response", url="https://example.test/x"))


def test_unknown_kind_is_rejected():
    with pytest.raises(HookConfigError, match="Unknown hook kind 'virus'"):
        validate_spec(spec("virus"))


def test_valid_specs_pass():
    validate_spec(spec("pii"))
    validate_spec(spec("safety", stage="response"))
    validate_spec(spec("host_list", stage="connection", block=["*.example.test"]))
    validate_spec(spec("classification", pii_levels={"us_ssn": "restricted"}))
