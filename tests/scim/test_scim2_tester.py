"""The third-party checker scim2-tester against the SCIM endpoint on loopback."""

from collections import Counter

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from apps.scim.tokens import issue_scim_token
from tests.iam.factories import make_org

FAILED = {Status.ERROR, Status.CRITICAL}


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
    counts = Counter(result.status.name for result in results)
    assert not failures, "\n".join(failures)
    assert counts["SUCCESS"] >= 40, counts
