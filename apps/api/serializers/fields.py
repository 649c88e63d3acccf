"""Fields shared by the API serializers, and the base class of its model serializers."""

from collections.abc import Mapping
from typing import Any

from django.db import models
from rest_framework import serializers

from apps.api.filters import find_organization
from apps.tenancy.models import Organization, Project


def reject_nul_characters(value: Any) -> None:
    """Raise ValidationError if a string anywhere in a JSON value contains NUL.

    PostgreSQL stores neither text nor jsonb with a NUL character and fails the
    query instead, so such a value must be rejected before it is saved.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul_characters(key)
            reject_nul_characters(item)
    elif isinstance(value, list):
        for item in value:
            reject_nul_characters(item)


class StorableJSONField(serializers.JSONField):
    """A JSON value that PostgreSQL can store (no NUL character in any string)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.validators.append(reject_nul_characters)


def nul_field_errors(
    data: Mapping[str, Any], field_names: list[str]
) -> dict[str, list[str]]:
    """Return a field error for each named field whose value contains NUL anywhere."""
    errors: dict[str, list[str]] = {}
    for name in field_names:
        if name not in data:
            continue
        try:
            reject_nul_characters(data[name])
        except serializers.ValidationError as exc:
            errors[name] = list(exc.detail)
    return errors


class ApiModelSerializer(serializers.ModelSerializer):
    """The base of the API's model serializers.

    A writable field whose input contains a NUL character in any string, including
    the keys and values of nested JSON, gets a field error before its own
    validation runs. Every model serializer of the REST API derives from this class.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.JSONField: StorableJSONField,
    }

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = [
                name for name, field in self.fields.items() if not field.read_only
            ]
            errors = nul_field_errors(data, writable)
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class OrganizationField(serializers.SlugRelatedField):
    """The owning organization: a slug or a numeric id on input, the slug on output.

    Set on create, fixed afterwards. The viewset resolves it against the actor's
    organizations before validation, so a foreign organization gets a 404 response
    and never reaches this field.
    """

    default_error_messages = {
        "does_not_exist": 'No organization with slug or id "{value}".',
    }

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("slug_field", "slug")
        kwargs.setdefault("queryset", Organization.objects.all())
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text", "Organization slug or numeric id; responses show the slug."
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        # Updates reach this field without the viewset's check.
        organization = find_organization(self.get_queryset(), data)
        if organization is None:
            self.fail("does_not_exist", value=data)
        return organization


class OrganizationIdField(serializers.PrimaryKeyRelatedField):
    """An organization: a slug or a numeric id on input, the id on output.

    For platform rows such as routes, which may name any organization.
    """

    default_error_messages = {
        "does_not_exist": 'No organization with slug or id "{pk_value}".',
    }

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("queryset", Organization.objects.all())
        kwargs.setdefault(
            "help_text", "Organization slug or numeric id; responses show the id."
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        organization = find_organization(self.get_queryset(), data)
        if organization is None:
            self.fail("does_not_exist", pk_value=data)
        return organization


class ProjectField(serializers.PrimaryKeyRelatedField):
    """A project id inside the row's organization; set on create, fixed afterwards."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("queryset", Project.objects.all())
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)


class ScopedSerializer(ApiModelSerializer):
    """A serializer whose organization and project cannot change after create."""

    fixed_fields = ("organization", "project")

    def validate(self, attrs):
        if self.instance is not None:
            for name in self.fixed_fields:
                if name in attrs and attrs[name] != getattr(self.instance, name, None):
                    raise serializers.ValidationError(
                        {name: ["This field cannot change."]}
                    )
        return super().validate(attrs)
