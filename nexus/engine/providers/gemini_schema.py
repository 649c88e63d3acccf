"""Rewriting of JSON Schema into the subset that Gemini's Schema object accepts.

Gemini's function `parameters` and `responseSchema` take an OpenAPI 3.0 Schema
object, and the API rejects a request whose schema uses any other keyword.
"""

import logging
from typing import Any

logger = logging.getLogger(__name__)

# Keywords of Gemini's Schema object. gemini_schema drops every other keyword.
SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "anyOf",
        "propertyOrdering",
        "default",
        "example",
    }
)
# The formats Gemini accepts per type. Other formats (email, uri, ...) are dropped.
SCHEMA_FORMATS = {
    "string": {"enum", "date-time"},
    "number": {"float", "double"},
    "integer": {"int32", "int64"},
}
# Inlined $ref chains deeper than this are cut off, which ends recursive schemas.
MAX_SCHEMA_DEPTH = 16


def gemini_schema(schema: Any) -> dict[str, Any] | None:
    """Rewrite a JSON Schema into the subset Gemini's Schema object accepts.

    Local $ref pointers are inlined, oneOf becomes anyOf, allOf members are merged,
    type arrays with "null" become nullable, string const becomes a one-value enum,
    and keywords Gemini lacks (additionalProperties, $schema, exclusiveMinimum, ...)
    are dropped. Enums of non-strings are dropped because Gemini enums are strings.
    """
    if not isinstance(schema, dict):
        return None
    definitions: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            definitions.update(schema[key])
    return _convert_schema(schema, definitions, 0)


def _convert_schema(
    node: Any, definitions: dict[str, Any], depth: int
) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    node = _inline_ref(node, definitions)
    if isinstance(node.get("allOf"), list):
        node = _merge_all_of(node)
    if depth > MAX_SCHEMA_DEPTH:
        return {"type": node["type"]} if isinstance(node.get("type"), str) else {}

    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            result.update(_schema_type(value))
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            result["anyOf"] = [
                _convert_schema(item, definitions, depth + 1) for item in value
            ]
        elif key == "properties" and isinstance(value, dict):
            result["properties"] = {
                name: _convert_schema(item, definitions, depth + 1)
                for name, item in value.items()
            }
        elif key == "items" and isinstance(value, dict):
            result["items"] = _convert_schema(value, definitions, depth + 1)
        elif key == "const" and isinstance(value, str):
            result["enum"] = [value]
        elif key == "enum":
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                result["enum"] = value
        elif key in SCHEMA_KEYWORDS and key not in ("anyOf", "items", "properties"):
            result[key] = value
    return _tidy_schema(result)


def _inline_ref(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    name = ref.rsplit("/", 1)[-1]
    target = definitions.get(name) if ref.startswith("#/") else None
    if not isinstance(target, dict):
        logger.debug("dropping unresolvable schema reference %s", ref)
        target = {}
    siblings = {key: value for key, value in node.items() if key != "$ref"}
    return {**target, **siblings}


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    merged = {key: value for key, value in node.items() if key != "allOf"}
    for member in node["allOf"]:
        if not isinstance(member, dict):
            continue
        for key, value in member.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _schema_type(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"type": value}
    if not isinstance(value, list):
        return {}
    kinds = [kind for kind in value if isinstance(kind, str) and kind != "null"]
    result: dict[str, Any] = {"nullable": True} if "null" in value else {}
    if len(kinds) == 1:
        result["type"] = kinds[0]
    elif kinds:
        result["anyOf"] = [{"type": kind} for kind in kinds]
    return result


def _tidy_schema(result: dict[str, Any]) -> dict[str, Any]:
    variants = result.get("anyOf")
    if isinstance(variants, list):
        non_null = [item for item in variants if item.get("type") != "null"]
        if len(non_null) < len(variants):
            result["nullable"] = True
        if len(non_null) == 1:
            del result["anyOf"]
            result = {**non_null[0], **result}
        else:
            result["anyOf"] = non_null

    allowed_formats = SCHEMA_FORMATS.get(result.get("type"), set())
    if "format" in result and result["format"] not in allowed_formats:
        del result["format"]
    properties = result.get("properties")
    if properties == {}:
        del result["properties"]
    required = result.get("required")
    if isinstance(required, list):
        names = [
            name
            for name in required
            if isinstance(properties, dict) and name in properties
        ]
        if names:
            result["required"] = list(dict.fromkeys(names))
        else:
            del result["required"]
    return result
