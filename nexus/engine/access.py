"""Which models a virtual key may call."""

from nexus.engine.errors import NotFoundError, PermissionDeniedError
from nexus.engine.snapshot import KeyEntry, ModelEntry, Snapshot


def key_reaches(key: KeyEntry, model: ModelEntry) -> bool:
    """Return whether model's connection is shared or owned by the key's organization."""
    return model.org_id is None or model.org_id == key.org_id


def key_allows(key: KeyEntry, model: ModelEntry) -> bool:
    """Return whether key may call model, by its public name or any of its aliases.

    A model on another organization's connection is never allowed. An empty allow
    list admits every other model. Upstream (physical) model ids are never public
    names, so listing one does not make it callable.
    """
    if not key_reaches(key, model):
        return False
    if not key.allowed_models:
        return True
    if model.name in key.allowed_models:
        return True
    return any(alias in key.allowed_models for alias in model.aliases)


def resolve_model(
    snapshot: Snapshot, key: KeyEntry, requested: str, kind: str
) -> ModelEntry:
    """Return the model the key may call under the requested name, or raise 403 or 404.

    A model on another organization's connection is treated like an unknown one. A
    key with an allow list gets 403 for every name outside it, known or not, so the
    answer does not reveal which other models exist.
    """
    model = snapshot.find_model(requested)
    if model is None or model.kind != kind or not key_reaches(key, model):
        if key.allowed_models:
            raise PermissionDeniedError(
                f'Model "{requested}" is not allowed for this key.', param="model"
            )
        raise NotFoundError(
            f'Model "{requested}" does not exist.',
            param="model",
            code="model_not_found",
        )
    if not key_allows(key, model):
        raise PermissionDeniedError(
            f'Model "{requested}" is not allowed for this key.', param="model"
        )
    return model


def visible_models(snapshot: Snapshot, key: KeyEntry) -> list[ModelEntry]:
    """Return the models the key may call, sorted by name."""
    return sorted(
        (m for m in snapshot.models.values() if key_allows(key, m)),
        key=lambda m: m.name,
    )
