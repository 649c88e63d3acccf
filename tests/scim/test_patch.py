"""SCIM PATCH as identity providers send it."""

from django.contrib.auth import get_user_model

from apps.scim.models import ScimGroup
from tests.scim.conftest import group_body, user_body


def make_user(scim, user_name: str, **fields) -> dict:
    return scim.post("/Users", user_body(user_name, **fields)).json()


def test_okta_style_replace_without_path(scim):
    user = make_user(scim, "okta@example.test")

    response = scim.patch(
        f"/Users/{user['id']}",
        [{"op": "replace", "value": {"active": False, "displayName": "Okta User"}}],
    )

    assert response.status_code == 200
    assert response.json()["active"] is False
    assert response.json()["displayName"] == "Okta User"
    assert not get_user_model().objects.get(username="okta@example.test").is_active


def test_azure_style_boolean_text_and_capitalized_op(scim):
    user = make_user(scim, "azure@example.test")

    response = scim.patch(
        f"/Users/{user['id']}", [{"op": "Replace", "path": "active", "value": "False"}]
    )

    assert response.status_code == 200
    assert response.json()["active"] is False


def test_value_filter_path_sets_sub_attribute(scim):
    user = make_user(
        scim,
        "filter@example.test",
        emails=[{"value": "old@example.test", "type": "work", "primary": True}],
    )

    changed = scim.patch(
        f"/Users/{user['id']}",
        [
            {
                "op": "replace",
                "path": 'emails[type eq "work"].value',
                "value": "new@example.test",
            }
        ],
    ).json()

    assert changed["emails"] == [
        {"value": "new@example.test", "type": "work", "primary": True}
    ]
    assert (
        get_user_model().objects.get(username="filter@example.test").email
        == "new@example.test"
    )


def test_add_with_unmatched_filter_appends_value(scim):
    user = make_user(scim, "append@example.test")

    changed = scim.patch(
        f"/Users/{user['id']}",
        [
            {
                "op": "add",
                "path": 'emails[type eq "work"].value',
                "value": "a@example.test",
            }
        ],
    ).json()

    assert changed["emails"] == [{"type": "work", "value": "a@example.test"}]


def test_sub_attribute_path_and_urn_prefix(scim):
    user = make_user(scim, "urn@example.test", name={"givenName": "A"})

    changed = scim.patch(
        f"/Users/{user['id']}",
        [
            {
                "op": "replace",
                "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
                "value": "Zed",
            }
        ],
    ).json()

    assert changed["name"] == {"givenName": "A", "familyName": "Zed"}


def test_group_members_add_and_remove_by_filter(scim, org):
    first = make_user(scim, "m1@example.test")["id"]
    second = make_user(scim, "m2@example.test")["id"]
    group = scim.post("/Groups", group_body("team", [first])).json()

    added = scim.patch(
        f"/Groups/{group['id']}",
        [{"op": "add", "path": "members", "value": [{"value": second}]}],
    ).json()
    removed = scim.patch(
        f"/Groups/{group['id']}",
        [{"op": "remove", "path": f'members[value eq "{first}"]'}],
    ).json()

    assert sorted(m["value"] for m in added["members"]) == sorted([first, second])
    assert [m["value"] for m in removed["members"]] == [second]
    members = ScimGroup.objects.get(scim_id=group["id"]).group.members.all()
    assert [user.username for user in members] == ["m2@example.test"]


def test_unknown_member_is_rejected(scim):
    group = scim.post("/Groups", group_body("strict")).json()

    response = scim.patch(
        f"/Groups/{group['id']}",
        [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": "00000000-0000-0000-0000-000000000000"}],
            }
        ],
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_unknown_path_is_rejected(scim):
    user = make_user(scim, "path@example.test")

    response = scim.patch(
        f"/Users/{user['id']}", [{"op": "replace", "path": "nickName", "value": "x"}]
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidPath"


def test_read_only_attribute_is_rejected(scim):
    user = make_user(scim, "ro@example.test")

    response = scim.patch(
        f"/Users/{user['id']}", [{"op": "replace", "path": "groups", "value": []}]
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "mutability"


def test_remove_without_path_is_rejected(scim):
    user = make_user(scim, "nopath@example.test")

    response = scim.patch(f"/Users/{user['id']}", [{"op": "remove"}])

    assert response.status_code == 400
    assert response.json()["scimType"] == "noTarget"


def test_failed_operation_changes_nothing(scim):
    user = make_user(scim, "atomic@example.test", displayName="Before")

    response = scim.patch(
        f"/Users/{user['id']}",
        [
            {"op": "replace", "path": "displayName", "value": "After"},
            {"op": "replace", "path": "nickName", "value": "x"},
        ],
    )

    assert response.status_code == 400
    assert scim.get(f"/Users/{user['id']}").json()["displayName"] == "Before"
