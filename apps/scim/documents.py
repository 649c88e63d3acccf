"""SCIM documents: client input normalized against a schema, and partial output.

A document is a dict keyed by canonical attribute names (as the schema spells
them), holding only assigned attributes: a missing key is an unassigned attribute.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from apps.scim.errors import InvalidValueError
from apps.scim.schemas import Attribute, ResourceSchema

# Attributes that are never client input (RFC 7643, section 3.1).
SERVER_ATTRIBUTES = {"schemas", "id", "meta"}
ALWAYS_RETURNED = ("schemas", "id", "meta")


def strip_schema_urn(name: str, schema: ResourceSchema) -> str:
    """Return an attribute name without the schema URN prefix a client may add."""
    prefix = schema.id.lower() + ":"
    return name[len(prefix) :] if name.lower().startswith(prefix) else name


def is_unassigned(value: Any) -> bool:
    """Return whether value stands for an unassigned attribute (RFC 7643, 2.5)."""
    return value is None or value == [] or value == {}


def normalize_value(attribute: Attribute, value: Any) -> Any:
    """Return value checked and converted for attribute; None means unassigned."""
    if is_unassigned(value):
        return None
    if attribute.multi_valued:
        items = value if isinstance(value, list) else [value]
        normalized = [_normalize_single(attribute, item) for item in items]
        return [item for item in normalized if not is_unassigned(item)] or None
    return _normalize_single(attribute, value)


def _normalize_single(attribute: Attribute, value: Any) -> Any:
    if value is None:
        return None
    if attribute.is_complex:
        if not isinstance(value, Mapping):
            raise InvalidValueError(
                f'Attribute "{attribute.name}" takes an object, got {type(value).__name__}.'
            )
        result = {}
        for key, sub_value in value.items():
            sub = attribute.sub_attribute(key)
            if sub is None or sub.read_only:
                continue
            normalized = _normalize_single(sub, sub_value)
            if normalized is not None:
                result[sub.name] = normalized
        return result or None
    if attribute.type == "boolean":
        return parse_boolean(attribute.name, value)
    if not isinstance(value, str):
        raise InvalidValueError(
            f'Attribute "{attribute.name}" takes a string, got {type(value).__name__}.'
        )
    # PostgreSQL text columns cannot store NUL characters.
    if "\x00" in value:
        raise InvalidValueError(
            f'Attribute "{attribute.name}" contains a NUL character.'
        )
    return value


def parse_boolean(name: str, value: Any) -> bool:
    """Return a boolean; some clients (Azure AD) send "True" and "False" as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidValueError(f'Attribute "{name}" takes true or false, got {value!r}.')


def normalize_document(schema: ResourceSchema, body: Mapping[str, Any]) -> dict:
    """Return the writable attributes of a POST or PUT body as a document.

    Read-only attributes, server attributes and attributes the schema does not
    define (such as unsupported extensions or a password) are ignored, as RFC 7644,
    section 3.3, allows.
    """
    if not isinstance(body, Mapping):
        raise InvalidValueError("The request body must be a JSON object.")
    document: dict[str, Any] = {}
    for key, value in body.items():
        if key in SERVER_ATTRIBUTES:
            continue
        attribute = schema.attribute(strip_schema_urn(key, schema))
        if attribute is None or attribute.read_only:
            continue
        normalized = normalize_value(attribute, value)
        if normalized is not None:
            document[attribute.name] = normalized
    return keep_one_primary(schema, document)


def keep_one_primary(schema: ResourceSchema, document: dict) -> dict:
    """Leave at most one item with primary true in each multi-valued attribute.

    RFC 7643, section 2.4, allows one primary value; the last one given wins.
    """
    for attribute in schema.attributes:
        items = document.get(attribute.name)
        if not attribute.multi_valued or not isinstance(items, list):
            continue
        primaries = [item for item in items if item.get("primary") is True]
        for item in primaries[:-1]:
            item["primary"] = False
    return document


def require_string(document: Mapping[str, Any], name: str) -> str:
    """Return the required string attribute name, or raise InvalidValueError."""
    value = document.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueError(f'Attribute "{name}" is required.')
    return value


def project(
    resource: dict[str, Any],
    schema: ResourceSchema,
    attributes: Iterable[str] = (),
    excluded: Iterable[str] = (),
) -> dict[str, Any]:
    """Apply the attributes or excludedAttributes parameter (RFC 7644, 3.4.2.5)."""
    wanted = _paths(schema, attributes)
    if wanted:
        result = {name: resource[name] for name in ALWAYS_RETURNED if name in resource}
        for top, sub in wanted:
            if top not in resource:
                continue
            if sub is None:
                result[top] = resource[top]
            else:
                result[top] = _with_sub(resource[top], result.get(top), sub)
        return result
    result = dict(resource)
    for top, sub in _paths(schema, excluded):
        if top in ALWAYS_RETURNED or top not in result:
            continue
        if sub is None:
            del result[top]
        else:
            result[top] = _without_sub(result[top], sub)
    return result


def _paths(
    schema: ResourceSchema, names: Iterable[str]
) -> list[tuple[str, str | None]]:
    paths = []
    for raw in names:
        top_name, _, sub_name = strip_schema_urn(raw.strip(), schema).partition(".")
        attribute = schema.attribute(top_name)
        if attribute is None:
            continue
        sub = attribute.sub_attribute(sub_name) if sub_name else None
        paths.append((attribute.name, sub.name if sub else None))
    return paths


def _with_sub(value: Any, partial: Any, sub: str) -> Any:
    if isinstance(value, list):
        kept = partial or [{} for _ in value]
        for item, copy in zip(value, kept, strict=True):
            if sub in item:
                copy[sub] = item[sub]
        return kept
    kept = partial if isinstance(partial, dict) else {}
    if isinstance(value, dict) and sub in value:
        kept[sub] = value[sub]
    return kept


def _without_sub(value: Any, sub: str) -> Any:
    if isinstance(value, list):
        return [{k: v for k, v in item.items() if k != sub} for item in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != sub}
    return value
