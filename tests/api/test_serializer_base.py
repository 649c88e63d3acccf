"""Every model serializer of the REST API derives from the shared base serializer."""

import importlib
import pkgutil
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import serializers

import apps
from apps.api.serializers.fields import ApiModelSerializer

APPS_DIR = Path(apps.__file__).resolve().parent


def walk_patterns(patterns, prefix: str = ""):
    """Yield (route, view class) for every URL pattern whose view is a class."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk_patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "cls", None)
            if view is not None:
                yield route, view


def routed_serializers() -> dict[type, str]:
    """Return the serializer class of every API view, with one route that uses it."""
    found: dict[type, str] = {}
    for route, view in walk_patterns(get_resolver().url_patterns):
        if not route.startswith("api/"):
            continue
        serializer = getattr(view, "serializer_class", None)
        if serializer is not None:
            found.setdefault(serializer, route)
    return found


def api_modules() -> list[str]:
    """Return the module names of every serializer module of the REST API."""
    names = []
    for path in sorted(APPS_DIR.glob("*/api/serializers.py")):
        names.append(f"apps.{path.parent.parent.name}.api.serializers")
    package = importlib.import_module("apps.api.serializers")
    for module in pkgutil.iter_modules(package.__path__):
        names.append(f"apps.api.serializers.{module.name}")
    return names


def model_serializers_in(module_name: str) -> list[type]:
    module = importlib.import_module(module_name)
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, serializers.ModelSerializer)
        and value.__module__ == module_name
        and value is not ApiModelSerializer
    ]


def test_routes_use_serializers():
    found = routed_serializers()

    assert any("routes" in route for route in found.values())
    assert any("hooks" in route for route in found.values())
    assert any("keys" in route for route in found.values())


def test_routed_model_serializers_derive_from_base():
    offenders = [
        f"{serializer.__module__}.{serializer.__qualname__} ({route})"
        for serializer, route in routed_serializers().items()
        if issubclass(serializer, serializers.ModelSerializer)
        and not issubclass(serializer, ApiModelSerializer)
    ]

    assert offenders == []


@pytest.mark.parametrize("module_name", api_modules())
def test_module_model_serializers_derive_from_base(module_name):
    offenders = [
        serializer.__qualname__
        for serializer in model_serializers_in(module_name)
        if not issubclass(serializer, ApiModelSerializer)
    ]

    assert offenders == []
