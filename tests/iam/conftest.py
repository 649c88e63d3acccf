import pytest

from tests.iam.factories import make_org, make_project


@pytest.fixture
def org(db):
    return make_org()


@pytest.fixture
def other_org(db):
    return make_org()


@pytest.fixture
def project(org):
    return make_project(org)
