"""Virtual keys are 256-bit random secrets shown once and stored only as an HMAC digest."""

import base64
import hashlib
import hmac

import pytest
from django.conf import settings

from apps.keys.models import VirtualKey
from apps.keys.services import issue_key, revoke_key, rotate_key
from tests.support.factories import make_org, make_project

pytestmark = pytest.mark.django_db


def test_issued_key_has_prefix_and_256_bits():
    issued = issue_key(organization=make_org(), name="k")

    assert issued.plaintext.startswith("nvk_")
    raw = base64.urlsafe_b64decode(issued.plaintext[4:] + "=")
    assert len(raw) == 32


def test_only_hmac_digest_is_stored():
    issued = issue_key(organization=make_org(), name="k")

    row = VirtualKey.objects.get(pk=issued.key.pk)
    expected = hmac.new(
        settings.NEXUS_KEY_HASH_SECRET.encode(),
        issued.plaintext.encode(),
        hashlib.sha256,
    ).hexdigest()
    assert row.digest == expected
    assert issued.plaintext not in [
        getattr(row, field.attname) for field in VirtualKey._meta.concrete_fields
    ]
    assert row.prefix == issued.plaintext[:12]


def test_project_from_other_org_rejected():
    project = make_project(make_org())

    with pytest.raises(ValueError, match="does not belong"):
        issue_key(organization=make_org(), name="k", project=project)


def test_revoke_is_idempotent():
    issued = issue_key(organization=make_org(), name="k")

    revoke_key(issued.key)
    first = VirtualKey.objects.get(pk=issued.key.pk).revoked_at
    revoke_key(issued.key)

    assert first is not None
    assert VirtualKey.objects.get(pk=issued.key.pk).revoked_at == first


def test_rotate_revokes_and_keeps_scope():
    org = make_org()
    issued = issue_key(organization=org, name="k", allowed_models=["m1"])

    replacement = rotate_key(issued.key)

    assert VirtualKey.objects.get(pk=issued.key.pk).revoked_at is not None
    assert replacement.plaintext != issued.plaintext
    assert replacement.key.allowed_models == ["m1"]
    assert replacement.key.organization == org
