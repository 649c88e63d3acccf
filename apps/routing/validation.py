"""Checks a route must pass before it is saved, from the admin or the REST API."""

from typing import Any

from django.core.exceptions import ValidationError

from apps.providers.models import Model
from nexus.engine.routing.config import (
    find_cycle,
    parse_node,
    referenced_models,
    referenced_routes,
)
from nexus.engine.routing.errors import RouteConfigError


def validate_route(route) -> None:
    """Raise ValidationError (by field) unless the route is consistent and complete.

    The strategy config must parse. Every model it names must exist and have the
    kind of the route's model. Every route it refers to must exist, and no chain of
    references may lead back to this route. Matchers, scope and retry settings must
    be well-formed.
    """
    errors: dict[str, list[str]] = {}
    models = _models_by_name()
    route_model = models.get(route.model)
    if not route.model or route_model is None:
        errors.setdefault("model", []).append(
            f'Model "{route.model}" does not exist; use a model name or alias.'
        )
    _check_config(route, models, route_model, errors)
    _check_matchers(route, errors)
    _check_scope(route, errors)
    _check_attempts(route, errors)
    if errors:
        raise ValidationError(errors)


def _models_by_name() -> dict[str, Model]:
    models: dict[str, Model] = {}
    rows = Model.objects.select_related("connection").only(
        "name", "aliases", "kind", "connection__organization_id"
    )
    for model in rows:
        models[model.name] = model
        for alias in model.aliases or ():
            models.setdefault(alias, model)
    return models


def _check_config(
    route, models: dict[str, Model], route_model: Model | None, errors: dict
) -> None:
    try:
        node = parse_node(route.config)
    except RouteConfigError as exc:
        errors.setdefault("config", []).append(str(exc))
        return
    for name in sorted(referenced_models(node)):
        model = models.get(name)
        if model is None:
            errors.setdefault("config", []).append(f'Model "{name}" does not exist.')
        elif route_model is not None and model.kind != route_model.kind:
            errors.setdefault("config", []).append(
                f'Model "{name}" is a {model.kind} model, but the route serves '
                f'{route_model.kind} model "{route.model}".'
            )
        elif not _usable_in_scope(route, model):
            errors.setdefault("config", []).append(
                f'Model "{name}" belongs to another organization than the one this '
                "route matches, so its requests could never reach it."
            )
    _check_references(route, node, errors)


def _usable_in_scope(route, model: Model) -> bool:
    """Return whether keys the route matches may use the model at all."""
    owner = model.connection.organization_id
    if owner is None:
        return True
    scope = route.organization_id
    if scope is None and route.project_id is not None:
        scope = route.project.organization_id
    if scope is None and route.key_id is not None:
        scope = route.key.organization_id
    # A route for every organization may name one organization's model; the
    # planner drops it for the others' keys.
    return scope is None or scope == owner


def _check_references(route, node, errors: dict) -> None:
    from apps.routing.models import Route

    others = Route.objects.exclude(pk=route.pk) if route.pk else Route.objects.all()
    references: dict[str, set[str]] = {}
    for other in others.only("name", "config"):
        try:
            references[other.name] = referenced_routes(parse_node(other.config))
        except RouteConfigError:
            references[other.name] = set()
    references[route.name] = referenced_routes(node)
    for name in sorted(references[route.name]):
        if name not in references:
            errors.setdefault("config", []).append(f'Route "{name}" does not exist.')
    cycle = find_cycle(route.name, references)
    if cycle:
        errors.setdefault("config", []).append(
            f"Route references form a cycle: {' -> '.join(cycle)}."
        )
    if route.pk:
        previous = Route.objects.filter(pk=route.pk).values_list("name", flat=True)
        old_name = previous.first()
        if old_name and old_name != route.name:
            users = sorted(
                name for name, targets in references.items() if old_name in targets
            )
            if users:
                errors.setdefault("name", []).append(
                    f'Routes {", ".join(users)} refer to "{old_name}"; change them first.'
                )


def _check_matchers(route, errors: dict) -> None:
    for field in ("match_headers", "match_metadata"):
        value = getattr(route, field)
        if not _string_map(value):
            errors.setdefault(field, []).append(
                "Must be a JSON object of string names to string values."
            )
    if _string_map(route.match_headers):
        route.match_headers = {
            name.lower(): value for name, value in route.match_headers.items()
        }


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(name, str) and name and isinstance(item, str)
        for name, item in value.items()
    )


def _check_scope(route, errors: dict) -> None:
    project, key = route.project, route.key
    organization = route.organization
    if project is not None and organization is not None:
        if project.organization_id != organization.pk:
            errors.setdefault("project", []).append(
                f'Project "{project.slug}" is not in organization "{organization.slug}".'
            )
    if key is not None and organization is not None:
        if key.organization_id != organization.pk:
            errors.setdefault("key", []).append(
                f'Key "{key.prefix}" is not in organization "{organization.slug}".'
            )
    if key is not None and project is not None and key.project_id != project.pk:
        errors.setdefault("key", []).append(
            f'Key "{key.prefix}" is not in project "{project.slug}".'
        )


def _check_attempts(route, errors: dict) -> None:
    if route.backoff_seconds is None or route.backoff_seconds <= 0:
        errors.setdefault("backoff_seconds", []).append("Must be a positive number.")
    elif route.max_backoff_seconds is None or (
        route.max_backoff_seconds < route.backoff_seconds
    ):
        errors.setdefault("max_backoff_seconds", []).append(
            "Must be at least backoff_seconds."
        )
    if route.timeout_seconds is not None and route.timeout_seconds <= 0:
        errors.setdefault("timeout_seconds", []).append(
            "Must be a positive number of seconds, or empty."
        )
    statuses = route.failover_statuses
    if not isinstance(statuses, list) or not all(
        isinstance(status, int)
        and not isinstance(status, bool)
        and 400 <= status <= 599
        for status in statuses
    ):
        errors.setdefault("failover_statuses", []).append(
            "Must be a JSON list of HTTP error statuses from 400 to 599."
        )
