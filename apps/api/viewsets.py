"""The base viewset: tenant scoping, authorization, audit logging and request ids.

Every API viewset derives from ScopedViewSet. It

- hides rows of other organizations (404) and lists only what the actor may read;
- authorizes each action through the IAM evaluator (403 with the reason);
- writes each change to the admin audit log with secrets masked, in the same
  transaction as the change;
- sets the X-Request-ID response header (the caller's, when well-formed);
- rejects (400) a list request with a query parameter the list does not read.
"""

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from apps.api.actors import actor_of
from apps.api.filters import ASCII_DIGITS, ApiFilterBackend, get_organization
from apps.iam import nrn
from apps.iam.changelog import record_change, snapshot
from apps.iam.context import context_from_request, request_id_for
from apps.iam.evaluator import Evaluator
from apps.iam.models import AdminAuditLog
from apps.iam.resources import (
    ResourceType,
    organization_of,
    resource_name,
    resource_type_of,
    scope_name,
)
from apps.iam.scoping import Lookups, listable, member_organizations, visible
from apps.tenancy.models import Organization, Project

DEFAULT_VERBS = {
    "list": "read",
    "retrieve": "read",
    "create": "create",
    "update": "update",
    "partial_update": "update",
    "destroy": "delete",
}


class KnownQueryParametersMixin:
    """Reject a list request that sends a query parameter the list does not read.

    A misspelt filter would otherwise be ignored and the list would return every
    row. The accepted parameters are the view's filters, the parameters of its
    filter backends and paginator, `organization` on tenant-scoped lists and the
    format override.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if self.action == "list":
            self.check_query_parameters(request)

    def accepted_query_parameters(self) -> set[str]:
        """Return the names of the query parameters the list action reads."""
        names = {api_settings.URL_FORMAT_OVERRIDE} - {None}
        for backend_class in self.filter_backends:
            backend = backend_class()
            if hasattr(backend, "query_parameters"):
                names |= backend.query_parameters(self)
            else:
                names |= _parameter_names(backend.get_schema_operation_parameters(self))
        if self.paginator is not None:
            names |= _parameter_names(
                self.paginator.get_schema_operation_parameters(self)
            )
        if self.lookups.org is not None:
            names.add("organization")
        return names

    def check_query_parameters(self, request: Request) -> None:
        """Raise ValidationError (400) naming each unknown query parameter."""
        accepted = self.accepted_query_parameters()
        unknown = sorted(set(request.query_params) - accepted)
        if not unknown:
            return
        message = (
            "Unknown query parameter. This list accepts: "
            f"{', '.join(sorted(accepted))}."
        )
        raise ValidationError({name: [message] for name in unknown})


def _parameter_names(parameters: list[dict[str, Any]]) -> set[str]:
    return {parameter["name"] for parameter in parameters}


class ScopedViewSet(KnownQueryParametersMixin, viewsets.GenericViewSet):
    """Tenant-scoped, authorized and audited access to one model."""

    filter_backends = [ApiFilterBackend]
    lookups = Lookups(org="organization")
    # Per-row authorization of lists when a policy matches; off for huge tables.
    row_check = True
    # Action name to permission verb, on top of DEFAULT_VERBS.
    verbs: dict[str, str] = {}
    evaluator: Evaluator

    @property
    def resource(self) -> ResourceType:
        return resource_type_of(self.queryset.model)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.evaluator = Evaluator(actor_of(request), context_from_request(request))

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Request-ID"] = request_id_for(request)
        return response

    def permission(self, action: str | None = None) -> str:
        """Return the permission the action needs."""
        action = action or self.action
        verb = self.verbs.get(action) or DEFAULT_VERBS.get(action, action)
        return self.resource.permission(verb)

    def require(self, permission: str, resource: nrn.Nrn) -> None:
        """Raise PermissionDenied (403) unless the evaluator allows it."""
        decision = self.evaluator.authorize(permission, resource)
        if not decision.allowed:
            raise PermissionDenied(
                f"Permission {permission} is denied on {resource}: {decision.reason}."
            )

    def get_queryset(self) -> QuerySet:
        qs = visible(super().get_queryset(), self.evaluator, self.lookups)
        if self.action != "list":
            return qs
        return self.list_queryset(qs)

    def list_queryset(self, qs: QuerySet) -> QuerySet:
        """Return the rows the actor may list; 404 for a foreign org filter, else 403.

        The `organization` query parameter (slug or id) limits the rows to one
        organization, for superusers too.
        """
        if self.lookups.org is None:
            self.require(self.permission(), scope_name(self.resource, None))
            return qs
        wanted = self.request.query_params.get("organization")
        if wanted:
            organization = get_organization(
                member_organizations(self.evaluator), wanted
            )
            qs = qs.filter(self.lookups.org_in([organization.pk]))
            organizations = [organization]
        else:
            organizations = None
        if self.evaluator.user is not None and self.evaluator.user.is_superuser:
            return qs
        if organizations is None:
            organizations = list(member_organizations(self.evaluator))
        allowed = listable(
            qs,
            self.evaluator,
            self.resource,
            self.lookups,
            organizations,
            row_check=self.row_check,
        )
        if allowed is None:
            raise PermissionDenied(
                f"Permission {self.permission()} is not granted in any of your organizations."
            )
        return allowed

    def get_object(self) -> Model:
        instance = super().get_object()
        self.require(self.permission(), resource_name(instance))
        return instance

    def target_scope(self, data: Any) -> tuple[Organization, Project | None]:
        """Resolve the organization (slug or id) and project a new row goes into.

        An organization or project outside the actor's organizations is a 404.
        """
        if not isinstance(data, Mapping):
            # A JSON body may be a list or a scalar. The serializer would reject it
            # too, but only after this method has read fields from it.
            raise ValidationError(
                {
                    api_settings.NON_FIELD_ERRORS_KEY: [
                        "Invalid data. Expected a dictionary, but got "
                        f"{type(data).__name__}."
                    ]
                }
            )
        organizations = member_organizations(self.evaluator)
        requested = data.get("organization")
        if requested in (None, ""):
            if organizations.count() != 1:
                raise ValidationError({"organization": ["This field is required."]})
            organization = organizations.get()
        else:
            organization = get_organization(organizations, requested)
        project_id = data.get("project") if self.lookups.project else None
        if project_id in (None, ""):
            return organization, None
        # ASCII digits only: str.isdigit() also accepts characters such as "²".
        project = (
            Project.objects.filter(
                pk=int(project_id), organization=organization
            ).first()
            if ASCII_DIGITS.fullmatch(str(project_id))
            else None
        )
        if project is None:
            raise NotFound(
                f'Project "{project_id}" does not exist in organization "{organization.slug}".'
            )
        return organization, project

    def record(
        self,
        action: str,
        instance: Model,
        before: dict | None,
        after: dict | None,
        *,
        resource: nrn.Nrn | None = None,
        organization_id: int | None = None,
    ) -> None:
        """Write one admin audit log row for a change made through the API."""
        organization = organization_of(instance)
        record_change(
            actor=self.evaluator.actor,
            action=self.permission(action),
            resource=resource or resource_name(instance),
            organization_id=organization_id
            or (organization.pk if organization else None),
            before=before,
            after=after,
            channel=AdminAuditLog.CHANNEL_API,
            context=self.evaluator.context,
        )


class ListRetrieveMixin(mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Read endpoints."""


class CreateMixin:
    """POST: resolve the target scope, authorize, validate, create through a service."""

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if self.lookups.org is None:
            organization, project = None, None
        else:
            organization, project = self.target_scope(request.data)
        self.require(
            self.permission(), scope_name(self.resource, organization, project)
        )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        with transaction.atomic():
            instance = self.perform_create_in(serializer, organization, project)
            self.record("create", instance, None, snapshot(instance))
        return Response(self.created_body(instance), status=status.HTTP_201_CREATED)

    def perform_create_in(
        self, serializer, organization: Organization | None, project: Project | None
    ) -> Model:
        """Create the row; subclasses call their service here."""
        extra = {"organization": organization} if organization is not None else {}
        if project is not None:
            extra["project"] = project
        return serializer.save(**extra)

    def created_body(self, instance: Model) -> dict:
        return self.get_serializer(instance).data


class UpdateMixin:
    """PUT and PATCH: authorize on the row, validate, update through a service."""

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)

        with transaction.atomic():
            before = snapshot(instance)
            instance = self.perform_update_in(serializer)
            self.record(self.action, instance, before, snapshot(instance))
        return Response(self.get_serializer(instance).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def perform_update_in(self, serializer) -> Model:
        return serializer.save()


class DestroyMixin:
    """DELETE: authorize on the row and delete it through a service."""

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        resource = resource_name(instance)
        organization = organization_of(instance)
        # Read the id now: deleting an organization clears the instance's pk.
        organization_id = organization.pk if organization else None

        with transaction.atomic():
            before = snapshot(instance)
            self.perform_destroy_in(instance)
            self.record(
                "destroy",
                instance,
                before,
                None,
                resource=resource,
                organization_id=organization_id,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_destroy_in(self, instance: Model) -> None:
        instance.delete()
