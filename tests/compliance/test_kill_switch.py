"""Kill switches stop traffic with a 503 in the caller's format and are audited."""

import anthropic
import openai
import pytest

from apps.compliance.models import ControlEvent, KillSwitch
from apps.compliance.services import save_control


@pytest.fixture
def oai(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


@pytest.fixture
def claude(setup):
    return anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.key, max_retries=0
    )


def switch_on(setup, cleanup, **fields) -> KillSwitch:
    switch = KillSwitch(reason="incident 7: runaway costs", **fields)
    save_control(switch, actor="ops")
    cleanup.append(switch)
    setup.gateway.refresh()
    return switch


@pytest.mark.parametrize("scope", ["global", "org", "key"])
def test_kill_switch_answers_503_in_openai_format(
    oai, setup, cleanup, fake_provider, scope
):
    fields = {"scope": scope}
    if scope == "org":
        fields["organization"] = setup.org
    if scope == "key":
        fields["key"] = setup.tenant.key_row
    before = len(fake_provider.requests)
    switch_on(setup, cleanup, **fields)

    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(
            model=setup.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == 503
    assert caught.value.code == "kill_switch"
    assert len(fake_provider.requests) == before


def test_kill_switch_answers_503_in_anthropic_format(claude, setup, cleanup):
    switch_on(setup, cleanup, scope="org", organization=setup.org)

    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(
            model=setup.claude,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
        )

    assert caught.value.status_code == 503
    assert caught.value.body["type"] == "error"


def test_other_organizations_keep_working(oai, setup, cleanup):
    from tests.support.factories import make_org

    switch_on(setup, cleanup, scope="org", organization=make_org())

    completion = oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.choices[0].message.content == "Echo: hi"


def test_release_restores_traffic_and_is_audited(oai, setup, cleanup):
    switch = switch_on(setup, cleanup, scope="key", key=setup.tenant.key_row)

    switch.active = False
    save_control(switch, actor="ops")
    setup.gateway.refresh()
    completion = oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.choices[0].message.content == "Echo: hi"
    actions = list(
        ControlEvent.objects.filter(control_type="kill_switch", control_id=switch.pk)
        .order_by("id")
        .values_list("action", "actor")
    )
    assert actions == [("on", "ops"), ("off", "ops")]


def test_kill_switch_needs_a_reason(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="written reason"):
        save_control(KillSwitch(scope="global", reason="  "), actor="ops")


def test_org_scope_needs_an_organization(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="requires the organization field"):
        save_control(KillSwitch(scope="org", reason="x"), actor="ops")
