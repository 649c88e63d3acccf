"""PATCH operations on a SCIM document (RFC 7644, section 3.5.2).

Paths take the forms `attr`, `attr.sub`, `attr[filter]` and `attr[filter].sub`,
optionally prefixed with the schema URN. A value filter is one or more `sub eq
value` comparisons joined by `and`, which covers what Azure AD, Okta and OneLogin
send (`members[value eq "..."]`, `emails[type eq "work"].value`).
"""

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.scim.documents import (
    is_unassigned,
    keep_one_primary,
    normalize_value,
    strip_schema_urn,
)
from apps.scim.errors import (
    InvalidFilterError,
    InvalidPathError,
    InvalidSyntaxError,
    MutabilityError,
    NoTargetError,
)
from apps.scim.schemas import Attribute, ResourceSchema

_PATH = re.compile(
    r"^(?P<attr>[A-Za-z$][\w$-]*)(?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[A-Za-z$][\w$-]*))?$"
)
_COMPARISON = re.compile(
    r'^\s*(?P<sub>[A-Za-z$][\w$-]*)\s+eq\s+(?P<value>"(?:[^"\\]|\\.)*"|true|false|null|-?\d+(?:\.\d+)?)\s*$',
    re.IGNORECASE,
)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


@dataclass(frozen=True)
class ValueFilter:
    """Comparisons (sub-attribute, value) that a multi-valued item must all meet."""

    comparisons: tuple[tuple[Attribute, Any], ...]

    def matches(self, item: Mapping[str, Any]) -> bool:
        return all(
            _equal(sub, item.get(sub.name), value) for sub, value in self.comparisons
        )

    def as_item(self) -> dict[str, Any]:
        """Return the item the filter describes, for an add that matched nothing."""
        return {sub.name: value for sub, value in self.comparisons}


@dataclass(frozen=True)
class AttributePath:
    """A parsed PATCH path."""

    attribute: Attribute
    value_filter: ValueFilter | None = None
    sub_attribute: Attribute | None = None


def _equal(sub: Attribute, actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str) and not sub.case_exact:
        return actual.lower() == expected.lower()
    return actual == expected


def parse_path(text: str, schema: ResourceSchema) -> AttributePath:
    """Parse a PATCH path against schema; raise InvalidPathError when it is unknown."""
    match = _PATH.match(strip_schema_urn(text.strip(), schema))
    if not match:
        raise InvalidPathError(f'PATCH path "{text}" is not a valid attribute path.')
    attribute = schema.attribute(match["attr"])
    if attribute is None:
        raise InvalidPathError(f'PATCH path "{text}" names an unknown attribute.')
    sub = None
    if match["sub"]:
        sub = attribute.sub_attribute(match["sub"])
        if sub is None:
            raise InvalidPathError(
                f'PATCH path "{text}" names an unknown sub-attribute.'
            )
    value_filter = None
    if match["filter"] is not None:
        if not attribute.multi_valued:
            raise InvalidPathError(
                f'PATCH path "{text}" filters an attribute that is not multi-valued.'
            )
        value_filter = _parse_filter(match["filter"], attribute)
    return AttributePath(attribute, value_filter, sub)


def _parse_filter(text: str, attribute: Attribute) -> ValueFilter:
    comparisons = []
    for part in _AND.split(text.strip()):
        match = _COMPARISON.match(part)
        sub = attribute.sub_attribute(match["sub"]) if match else None
        if match is None or sub is None:
            raise InvalidFilterError(
                f'Value filter "{text}" is not supported; use sub-attribute eq '
                "comparisons joined by and."
            )
        comparisons.append((sub, json.loads(match["value"])))
    return ValueFilter(tuple(comparisons))


def apply_operations(
    schema: ResourceSchema, document: dict[str, Any], operations: Any
) -> dict[str, Any]:
    """Return a copy of document with the PATCH operations applied in order."""
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntaxError("A PATCH request needs a non-empty Operations list.")
    result = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, Mapping):
            raise InvalidSyntaxError("Each PATCH operation must be an object.")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "remove", "replace"):
            raise InvalidSyntaxError(
                f'PATCH op "{operation.get("op")}" is not add, remove or replace.'
            )
        path, value = operation.get("path"), operation.get("value")
        if path:
            _apply(result, op, parse_path(str(path), schema), value)
        elif op == "remove":
            raise NoTargetError("A PATCH remove operation needs a path.")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                _apply(result, op, parse_path(key, schema), item)
        else:
            raise InvalidSyntaxError(
                "A PATCH operation without a path needs an object value."
            )
    return keep_one_primary(schema, result)


def _apply(document: dict, op: str, path: AttributePath, value: Any) -> None:
    attribute = path.attribute
    if attribute.read_only or attribute.name == "id":
        raise MutabilityError(f'Attribute "{attribute.name}" is read-only.')
    if path.value_filter is not None:
        _apply_filtered(document, op, path, value)
    elif path.sub_attribute is not None:
        _apply_sub(document, op, path, value)
    else:
        _apply_whole(document, op, attribute, value)
    if is_unassigned(document.get(attribute.name)):
        document.pop(attribute.name, None)


def _apply_whole(document: dict, op: str, attribute: Attribute, value: Any) -> None:
    if op == "remove":
        document.pop(attribute.name, None)
        return
    new = normalize_value(attribute, value)
    current = document.get(attribute.name)
    if op == "add" and attribute.multi_valued and current:
        document[attribute.name] = current + [i for i in new or [] if i not in current]
    elif op == "add" and attribute.is_complex and isinstance(current, dict):
        document[attribute.name] = {**current, **(new or {})}
    else:
        document[attribute.name] = new


def _apply_sub(document: dict, op: str, path: AttributePath, value: Any) -> None:
    attribute, sub = path.attribute, path.sub_attribute
    if attribute.multi_valued:
        items = document.get(attribute.name) or []
        if not items and op != "remove":
            raise NoTargetError(
                f'Attribute "{attribute.name}" has no values to set "{sub.name}" on.'
            )
        for item in items:
            _set_sub(item, op, sub, value)
        return
    current = dict(document.get(attribute.name) or {})
    _set_sub(current, op, sub, value)
    document[attribute.name] = current


def _apply_filtered(document: dict, op: str, path: AttributePath, value: Any) -> None:
    attribute, sub = path.attribute, path.sub_attribute
    items = list(document.get(attribute.name) or [])
    matched = [item for item in items if path.value_filter.matches(item)]
    if op == "remove":
        if sub is None:
            items = [item for item in items if item not in matched]
        for item in matched if sub is not None else []:
            item.pop(sub.name, None)
    elif not matched and op == "add" and sub is not None:
        item = path.value_filter.as_item()
        _set_sub(item, op, sub, value)
        items.append(item)
    elif not matched:
        raise NoTargetError(f'No value of "{attribute.name}" matches the path filter.')
    elif sub is not None:
        for item in matched:
            _set_sub(item, op, sub, value)
    else:
        replacement = normalize_value(attribute, value) or []
        items = [item for item in items if item not in matched] + replacement
    document[attribute.name] = [item for item in items if item]


def _set_sub(item: dict, op: str, sub: Attribute, value: Any) -> None:
    if sub.read_only:
        raise MutabilityError(f'Sub-attribute "{sub.name}" is read-only.')
    normalized = None if op == "remove" else normalize_value(sub, value)
    if normalized is None:
        item.pop(sub.name, None)
    else:
        item[sub.name] = normalized
