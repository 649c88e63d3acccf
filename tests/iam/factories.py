"""Users, organizations and role grants for the IAM and API tests."""

import uuid

from django.contrib.auth import get_user_model

from apps.iam.models import Membership
from apps.tenancy.models import Organization, Project


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_org(name: str | None = None) -> Organization:
    name = name or unique("org")
    return Organization.objects.create(name=name, slug=name)


def make_project(org: Organization, name: str | None = None) -> Project:
    name = name or unique("project")
    return Project.objects.create(organization=org, name=name, slug=name)


def make_user(name: str | None = None, **fields):
    return get_user_model().objects.create_user(
        username=name or unique("user"), password=None, **fields
    )


def make_member(org: Organization, role: str, project: Project | None = None, **fields):
    user = make_user(**fields)
    Membership.objects.create(user=user, organization=org, role=role, project=project)
    return user
