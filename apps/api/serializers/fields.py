"""Fields shared by the API serializers."""

from rest_framework import serializers

from apps.tenancy.models import Organization, Project


class OrganizationField(serializers.SlugRelatedField):
    """The owning organization by slug; set on create, fixed afterwards.

    The viewset resolves it against the actor's organizations before validation, so a
    foreign slug gets a 404 response and never reaches this field.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("slug_field", "slug")
        kwargs.setdefault("queryset", Organization.objects.all())
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)


class ProjectField(serializers.PrimaryKeyRelatedField):
    """A project id inside the row's organization; set on create, fixed afterwards."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("queryset", Project.objects.all())
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)


class ScopedSerializer(serializers.ModelSerializer):
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
