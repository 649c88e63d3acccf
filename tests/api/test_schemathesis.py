"""Property-based tests of the REST API against its own OpenAPI schema.

schemathesis reads the schema that drf-spectacular serves at /api/schema/ and, for
every operation, sends generated requests (valid and invalid) to the Django app
in-process over WSGI, authenticated as an organization's service token with every
scope. Each response must not be a server error and must match the schema where the
schema documents it.
"""

from collections import Counter

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.core.signals import request_finished, request_started
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from apps.iam.tokens import issue_service_token

APP = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/schema/", APP)

# Path parameter values of rows that exist, per collection path, so that retrieve,
# update and delete reach a real row and not only the 404 branch.
KNOWN_PATH_VALUES: dict[str, list[dict]] = {}
REQUESTS: Counter = Counter()


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    known = KNOWN_PATH_VALUES.get(context.operation.path, [])
    if not path_parameters or not known:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, *known])


def _known_path_values(world) -> dict[str, list[dict]]:
    rows = world.rows
    values = {
        "/api/v1/orgs/{slug}/": [{"slug": world.org.slug}],
        "/api/v1/projects/{id}/": [{"id": world.project.pk}],
        "/api/v1/keys/{id}/": [{"id": rows["key_org"].pk}, {"id": rows["key_project"].pk}],
        "/api/v1/provider-connections/{id}/": [{"id": rows["connection"].pk}],
        "/api/v1/models/{id}/": [{"id": rows["model"].pk}],
        "/api/v1/audit-events/{id}/": [{"id": rows["event"].pk}],
        "/api/v1/admin-audit-log/{id}/": [{"id": rows["log"].pk}],
        "/api/v1/memberships/{id}/": [{"id": rows["membership"].pk}],
        "/api/v1/groups/{id}/": [{"id": rows["group"].pk}],
        "/api/v1/policies/{id}/": [{"id": rows["policy"].pk}],
        "/api/v1/service-tokens/{id}/": [{"id": rows["token"].pk}],
        "/api/v1/user-tags/{id}/": [{"id": rows["user_tags"].pk}],
        "/api/v1/resource-tags/{id}/": [{"id": rows["resource_tags"].pk}],
        "/api/v1/users/{id}/": [{"id": rows["target"].pk}],
    }
    for path in list(values):
        for action in ("revoke", "rotate"):
            values[path.replace("}/", f"}}/{action}/")] = values[path]
    return values


@pytest.fixture(scope="module")
def report_counts(request):
    """Print how many operations and requests the module exercised."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not REQUESTS:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(
            f"\nschemathesis: {len(REQUESTS)} operations, "
            f"{sum(REQUESTS.values())} requests"
        )


@pytest.fixture
def owner_token(world, report_counts):
    KNOWN_PATH_VALUES.clear()
    KNOWN_PATH_VALUES.update(_known_path_values(world))
    # The app runs in the test's thread and transaction, as Django's test client
    # does it: closing "old" connections at request end would end the transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield issue_service_token(world.org, name="schemathesis", scopes=["*"]).plaintext
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    KNOWN_PATH_VALUES.clear()


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_operation(case, owner_token, django_capture_on_commit_callbacks):
    REQUESTS[case.operation.label] += 1
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        response = case.call(headers={"Authorization": f"Bearer {owner_token}"})
    open("/tmp/schemahelper/phases","a").write(f"{case.operation.label}\t{case.meta.phase.name if case.meta else None}\t{getattr(case.meta, 'generation', None) and case.meta.generation.mode}\t{response.status_code}\t{response.content[:200]!r}\n")
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            response_schema_conformance,
            content_type_conformance,
            response_headers_conformance,
        ],
    )
