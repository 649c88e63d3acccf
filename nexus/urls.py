from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.routing.api.urls")),
    path("api/v1/", include("apps.quotas.api.urls")),
    path("api/v1/", include("apps.hooks.api.urls")),
    path("api/v1/", include("apps.compliance.api.urls")),
    path("api/", include("apps.api.urls")),
    path("sso/", include("apps.sso.urls")),
    path("scim/v2/", include("apps.scim.urls")),
]
