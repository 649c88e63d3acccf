"""The third-party checker scim2-tester against the SCIM endpoint on loopback."""

from collections import Counter

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from apps.scim.tokens import issue_scim_token
from tests.iam.factories import make_org

FAILED = {Status.ERROR, Status.CRITICAL}
REQUIRED_CHECKS = (
    "object_creation",
    "object_query",
    "object_query_without_id",
    "object_query_with_attributes",
    "object_list_with_attributes",
    "object_replacement",
    "object_deletion",
    "check_add_attribute",
    "check_remove_attribute",
    "check_replace_attribute",
)


@pytest.fixture
def scim_base(gateway, db_rows):
    org = make_org()
    token = issue_scim_token(org, name="scim2-tester").plaintext
    return f"{gateway.url}/scim/v2", token


def test_scim2_tester_reports_no_errors(scim_base):
    base_url, token = scim_base
    http = Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    client = SyncSCIMClient(http)

    results = check_server(client)

    failures = [
        f"{result.title} [{result.resource_type}]: {result.reason}"
        for result in results
        if result.status in FAILED
    ]
    skipped = {result.title for result in results if result.status == Status.SKIPPED}
    checked = {(result.title, result.resource_type) for result in results}
    assert not failures, "\n".join(failures)
    # Searching several resource types at once (POST /.search) is not implemented.
    assert skipped <= {"search_with_attributes"}, skipped
    for resource_type in ("User", "Group"):
        for title in REQUIRED_CHECKS:
            assert (title, resource_type) in checked, (title, resource_type)
    assert Counter(result.status.name for result in results)["SUCCESS"] >= 60
