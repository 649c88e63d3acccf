import pytest

from nexus.engine.controls import (
    ControlsConfig,
    KillSwitchEntry,
    KillSwitchError,
    PassthroughEntry,
    active_bypasses,
    check_kill_switches,
)


@pytest.mark.parametrize(
    ("switch", "org_id", "key_id", "stopped"),
    [
        (KillSwitchEntry(1, "global"), 1, 1, True),
        (KillSwitchEntry(1, "org", 5), 5, 1, True),
        (KillSwitchEntry(1, "org", 5), 6, 1, False),
        (KillSwitchEntry(1, "key", 9), 5, 9, True),
        (KillSwitchEntry(1, "key", 9), 5, 8, False),
    ],
)
def test_kill_switch_scopes(switch, org_id, key_id, stopped):
    config = ControlsConfig(kill_switches=(switch,))

    if stopped:
        with pytest.raises(KillSwitchError) as caught:
            check_kill_switches(config, org_id, key_id)
        assert caught.value.status == 503
    else:
        check_kill_switches(config, org_id, key_id)


def test_passthrough_scopes_and_expiry():
    config = ControlsConfig(
        passthrough=(
            PassthroughEntry(1, "global", frozenset({"cache"}), expires_at=200.0),
            PassthroughEntry(
                2, "org", frozenset({"hooks"}), expires_at=300.0, scope_id=5
            ),
            PassthroughEntry(
                3, "provider", frozenset({"normalize"}), expires_at=300.0, scope_id=7
            ),
        )
    )

    assert active_bypasses(config, 5, 7, now=100.0) == (
        {"cache", "hooks", "normalize"},
        [1, 2, 3],
    )
    assert active_bypasses(config, 6, 8, now=100.0) == ({"cache"}, [1])
    assert active_bypasses(config, 5, 8, now=250.0) == ({"hooks"}, [2])
    assert active_bypasses(config, 5, 7, now=300.0) == (set(), [])
