"""SCIM Groups are IAM groups: membership gives the roles the group grants."""

from apps.iam.models import SOURCE_SCIM, Group
from apps.iam.selectors import roles_for
from apps.iam.services import set_group_roles
from apps.scim.models import ScimGroup, ScimUser
from tests.scim.conftest import group_body, user_body


def provision(scim, user_name: str):
    created = scim.post("/Users", user_body(user_name)).json()
    return created["id"], ScimUser.objects.get(scim_id=created["id"]).user


def test_create_group_makes_scim_sourced_iam_group(scim, org):
    member_id, member = provision(scim, "g1@example.test")

    response = scim.post(
        "/Groups", group_body("Engineering", [member_id], externalId="x")
    )

    created = response.json()
    assert response.status_code == 201
    group = ScimGroup.objects.get(scim_id=created["id"]).group
    assert (group.organization, group.name, group.source) == (
        org,
        "Engineering",
        SOURCE_SCIM,
    )
    assert group.external_id == "x"
    assert list(group.members.all()) == [member]
    assert created["members"][0]["value"] == member_id
    assert created["members"][0]["$ref"].endswith(f"/scim/v2/Users/{member_id}")


def test_user_lists_its_groups(scim):
    member_id, _ = provision(scim, "g2@example.test")
    group = scim.post("/Groups", group_body("Ops", [member_id])).json()

    user = scim.get(f"/Users/{member_id}").json()

    assert user["groups"] == [
        {"value": group["id"], "$ref": group["meta"]["location"], "display": "Ops"}
    ]


def test_duplicate_display_name_is_a_conflict(scim, org):
    Group.objects.create(organization=org, name="Taken")

    response = scim.post("/Groups", group_body("Taken"))

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


def test_membership_changes_roles(scim, org):
    member_id, member = provision(scim, "g3@example.test")
    created = scim.post("/Groups", group_body("Developers")).json()
    group = ScimGroup.objects.get(scim_id=created["id"]).group
    set_group_roles(group, [("developer", None)])
    assert roles_for(member, org) == []

    scim.patch(
        f"/Groups/{created['id']}",
        [{"op": "add", "path": "members", "value": [{"value": member_id}]}],
    )
    granted = [(g.role, g.group_id) for g in roles_for(member, org)]
    scim.patch(
        f"/Groups/{created['id']}",
        [{"op": "remove", "path": f'members[value eq "{member_id}"]'}],
    )

    assert granted == [("developer", group.pk)]
    assert roles_for(member, org) == []


def test_deleting_group_removes_its_roles(scim, org):
    member_id, member = provision(scim, "g4@example.test")
    created = scim.post("/Groups", group_body("Auditors", [member_id])).json()
    set_group_roles(
        ScimGroup.objects.get(scim_id=created["id"]).group, [("auditor", None)]
    )

    response = scim.delete(f"/Groups/{created['id']}")

    assert response.status_code == 204
    assert roles_for(member, org) == []
    assert scim.get(f"/Groups/{created['id']}").status_code == 404


def test_deleting_user_leaves_groups(scim, org):
    member_id, member = provision(scim, "g5@example.test")
    created = scim.post("/Groups", group_body("Viewers", [member_id])).json()

    scim.delete(f"/Users/{member_id}")

    group = scim.get(f"/Groups/{created['id']}").json()
    assert "members" not in group
    assert not member.iam_groups.exists()


def test_put_renames_group(scim):
    created = scim.post("/Groups", group_body("Old name")).json()

    response = scim.put(f"/Groups/{created['id']}", group_body("New name"))

    assert response.status_code == 200
    assert response.json()["displayName"] == "New name"
    assert ScimGroup.objects.get(scim_id=created["id"]).group.name == "New name"
