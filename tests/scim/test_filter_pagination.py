"""SCIM filtering, paging and search requests."""

import pytest
from django.test import override_settings

from tests.scim.conftest import group_body, user_body

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
def five_users(scim):
    return [
        scim.post(
            "/Users", user_body(f"user{i}@example.test", externalId=f"ext-{i}")
        ).json()
        for i in range(5)
    ]


def test_filter_by_user_name_ignores_case(scim, five_users):
    found = scim.get("/Users", filter='userName eq "USER3@example.test"').json()

    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == five_users[3]["id"]


def test_filter_combines_conditions(scim, five_users):
    query = 'externalId eq "ext-1" or (userName sw "user4" and active eq true)'

    found = scim.get("/Users", filter=query).json()

    ids = {resource["id"] for resource in found["Resources"]}
    assert ids == {five_users[1]["id"], five_users[4]["id"]}


def test_filter_on_unknown_attribute_is_rejected(scim, five_users):
    response = scim.get("/Users", filter='nickName eq "x"')

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


def test_malformed_filter_is_rejected(scim):
    response = scim.get("/Users", filter='userName eq "unterminated')

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


def test_pages_cover_every_user_once(scim, five_users):
    first = scim.get("/Users", startIndex=1, count=2).json()
    second = scim.get("/Users", startIndex=3, count=2).json()
    third = scim.get("/Users", startIndex=5, count=2).json()

    pages = first["Resources"] + second["Resources"] + third["Resources"]
    assert first["totalResults"] == 5
    assert [first["itemsPerPage"], second["itemsPerPage"], third["itemsPerPage"]] == [
        2,
        2,
        1,
    ]
    assert second["startIndex"] == 3
    assert sorted(r["id"] for r in pages) == sorted(u["id"] for u in five_users)


def test_count_zero_returns_only_the_total(scim, five_users):
    page = scim.get("/Users", count=0).json()

    assert page["totalResults"] == 5
    assert page["Resources"] == []


def test_start_below_one_is_one(scim, five_users):
    page = scim.get("/Users", startIndex=-3, count=1).json()

    assert page["startIndex"] == 1
    assert page["Resources"][0]["id"] == five_users[0]["id"]


@override_settings(NEXUS_SCIM_MAX_RESULTS=3)
def test_count_is_capped(scim, five_users):
    page = scim.get("/Users", count=1000).json()

    assert page["itemsPerPage"] == 3
    assert page["totalResults"] == 5


def test_non_integer_count_is_rejected(scim):
    response = scim.get("/Users", count="many")

    assert response.status_code == 400


def test_search_request_in_body(scim, five_users):
    body = {
        "schemas": [SEARCH],
        "filter": 'userName sw "user"',
        "startIndex": 2,
        "count": 2,
        "attributes": ["userName"],
    }

    found = scim.post("/Users/.search", body).json()

    assert found["totalResults"] == 5
    assert found["itemsPerPage"] == 2
    assert set(found["Resources"][0]) == {"schemas", "id", "meta", "userName"}


def test_group_filter_by_member(scim, five_users):
    member = five_users[2]["id"]
    scim.post("/Groups", group_body("with-member", [member]))
    scim.post("/Groups", group_body("without-member"))

    found = scim.get("/Groups", filter=f'members.value eq "{member}"').json()
    by_name = scim.get("/Groups", filter='displayName eq "WITHOUT-member"').json()

    assert [r["displayName"] for r in found["Resources"]] == ["with-member"]
    assert by_name["totalResults"] == 1


def test_service_provider_config_declares_features(scim):
    config = scim.get("/ServiceProviderConfig").json()

    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
