from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("apps.api.urls")),
    path("sso/", include("apps.sso.urls")),
    path("scim/v2/", include("apps.scim.urls")),
]
