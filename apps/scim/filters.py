"""The `filter` query parameter of /Users and /Groups as Django queries.

scim2-filter-parser turns the filter into a Q object through an attribute map.
Its transpiler drops comparisons on unmapped attributes, which would widen the
result, so an unknown attribute is rejected here instead.
"""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django_scim.constants import SchemaURI
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser
from scim2_filter_parser.transpilers.django_q_object import Transpiler

from apps.scim.models import ScimGroup, ScimUser
from apps.scim.scoping import ORGANIZATION_ATTRIBUTE

AttrKey = tuple[str, str | None, str | None]


def _with_schema_uri(attr_map: dict[AttrKey, str], uri: str) -> dict[AttrKey, str]:
    """Accept each attribute with and without its schema URN prefix."""
    mapped = dict(attr_map)
    for (attr, sub, _), field in attr_map.items():
        mapped[(attr, sub, uri)] = field
    return mapped


class StrictTranspiler(Transpiler):
    """A transpiler that raises ValueError on attributes it cannot map."""

    def visit_AttrPath(self, node: Any) -> str:
        field = super().visit_AttrPath(node)
        if field is None:
            name = node.attr_name if isinstance(node.attr_name, str) else "filter"
            raise ValueError(f'Filtering on "{name}" is not supported.')
        return field


class FilterQuery:
    """Search one organization's rows of model with a SCIM filter."""

    model: type = None
    attr_map: dict[AttrKey, str] = {}

    @classmethod
    def search(cls, filter_query: str, request: HttpRequest | None = None) -> QuerySet:
        """Return the rows that match filter_query; raise ValueError when it is bad."""
        tree = SCIMParser().parse(SCIMLexer().tokenize(filter_query))
        condition = StrictTranspiler(cls.attr_map).transpile(tree)
        organization = getattr(request, ORGANIZATION_ATTRIBUTE)
        rows = cls.model.objects.filter(organization=organization)
        return rows.filter(condition).distinct().order_by("created_at", "pk")


class UserFilterQuery(FilterQuery):
    model = ScimUser
    attr_map = _with_schema_uri(
        {
            ("id", None, None): "scim_id",
            ("externalId", None, None): "external_id",
            ("userName", None, None): "user__username",
            ("displayName", None, None): "display_name",
            ("name", "givenName", None): "user__first_name",
            ("name", "familyName", None): "user__last_name",
            # NOTE: only the primary email is indexed, so an emails filter matches it
            # and not the other addresses.
            ("emails", None, None): "user__email",
            ("emails", "value", None): "user__email",
            ("active", None, None): "user__is_active",
            ("meta", "created", None): "created_at",
            ("meta", "lastModified", None): "updated_at",
        },
        SchemaURI.USER,
    )


class GroupFilterQuery(FilterQuery):
    model = ScimGroup
    attr_map = _with_schema_uri(
        {
            ("id", None, None): "scim_id",
            ("externalId", None, None): "group__external_id",
            ("displayName", None, None): "group__name",
            ("members", None, None): "group__members__scim_identity__scim_id",
            ("members", "value", None): "group__members__scim_identity__scim_id",
            ("meta", "created", None): "created_at",
            ("meta", "lastModified", None): "updated_at",
        },
        SchemaURI.GROUP,
    )
