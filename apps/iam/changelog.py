"""The admin audit log: who changed what through the admin or the REST API.

Row snapshots mask secrets (credentials, token and key digests, passwords) before they
are stored, so the log itself never holds one.
"""

import json
import logging
import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from apps.iam import nrn
from apps.iam.context import AccessContext
from apps.iam.models import AdminAuditLog, ServiceToken

logger = logging.getLogger(__name__)

MASK = "***"
SECRET_FIELD = re.compile(r"(credential|digest|password|secret|token|ciphertext)", re.I)


def mask(data: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of data with the values of secret-looking keys masked.

    A masked value shows only whether it was set: `***` when set, the empty value
    otherwise. Nested objects are masked the same way.
    """
    masked: dict[str, Any] = {}
    for name, value in data.items():
        if SECRET_FIELD.search(name) and not isinstance(value, (dict, list, bool)):
            masked[name] = MASK if value else value
        elif isinstance(value, dict):
            masked[name] = mask(value)
        else:
            masked[name] = value
    return masked


def snapshot(instance: models.Model) -> dict[str, Any]:
    """Return the row's field values as JSON-ready data with secrets masked."""
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        data[field.attname] = field.value_from_object(instance)
    if instance.pk is not None:
        for field in instance._meta.many_to_many:
            data[field.name] = sorted(
                row.pk for row in field.value_from_object(instance)
            )
    return mask(json.loads(json.dumps(data, cls=DjangoJSONEncoder)))


def _actor_fields(actor: AbstractBaseUser | ServiceToken | None) -> dict[str, Any]:
    if actor is None:
        return {"actor": "system"}
    if isinstance(actor, ServiceToken):
        return {"actor_token_id": actor.pk, "actor": f"token:{actor.prefix}"}
    return {"actor_user_id": actor.pk, "actor": actor.get_username()}


def record_change(
    *,
    actor: AbstractBaseUser | ServiceToken | None,
    action: str,
    resource: nrn.Nrn | str,
    organization_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    channel: str,
    context: AccessContext | None = None,
) -> AdminAuditLog:
    """Store one admin audit log row; before and after are masked again on the way in."""
    context = context or AccessContext()
    entry = AdminAuditLog.objects.create(
        organization_id=organization_id,
        channel=channel,
        action=action,
        resource=str(resource),
        before=mask(before) if before is not None else None,
        after=mask(after) if after is not None else None,
        request_id=context.request_id,
        client_ip=context.source_ip,
        **_actor_fields(actor),
    )
    logger.info(
        "%s %s via %s",
        action,
        entry.resource,
        channel,
        extra={
            "tenant_id": organization_id,
            "request_id": context.request_id,
            "actor_user_id": entry.actor_user_id,
            "actor_token_id": entry.actor_token_id,
        },
    )
    return entry
