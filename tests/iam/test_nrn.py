import pytest

from apps.iam import nrn
from apps.iam.errors import InvalidResourceNameError


def test_build_org_level_name():
    name = nrn.build("keys", "acme", "key", 42)

    assert str(name) == "nrn:nexus:keys:acme:key/42"


def test_build_project_level_name():
    name = nrn.build("keys", "acme", "key", 42, project="web")

    assert str(name) == "nrn:nexus:keys:acme/web:key/42"


def test_parse_round_trips():
    text = "nrn:nexus:keys:acme/web:key/42"

    name = nrn.parse(text)

    assert (name.service, name.org, name.project, name.type, name.id) == (
        "keys",
        "acme",
        "web",
        "key",
        "42",
    )
    assert str(name) == text


def test_platform_name_has_empty_org():
    name = nrn.parse("nrn:nexus:providers::model/7")

    assert name.is_platform
    assert name.org == ""


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:s3:::bucket",
        "nrn:nexus:keys:acme",
        "nrn:nexus:keys:acme:key",
        "nrn:nexus::acme:key/1",
    ],
)
def test_malformed_names_are_rejected(text):
    with pytest.raises(InvalidResourceNameError):
        nrn.parse(text)


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("nrn:nexus:keys:acme:key/*", "nrn:nexus:keys:acme:key/1", True),
        ("nrn:nexus:keys:acme:key/*", "nrn:nexus:keys:acme/web:key/1", False),
        ("nrn:nexus:keys:acme/*:key/*", "nrn:nexus:keys:acme/web:key/1", True),
        ("nrn:nexus:keys:acme/web:key/1?", "nrn:nexus:keys:acme/web:key/12", True),
        ("nrn:nexus:*", "nrn:nexus:audit:acme:event/5", True),
        ("nrn:nexus:keys:other:*", "nrn:nexus:keys:acme:key/1", False),
    ],
)
def test_glob_matching(pattern, name, expected):
    assert nrn.matches(pattern, name) is expected
