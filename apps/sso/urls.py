from django.urls import path

from apps.sso.views import SsoCallbackView, SsoLoginView

# The names are mozilla-django-oidc's defaults, which its views reverse.
urlpatterns = [
    path("login/", SsoLoginView.as_view(), name="oidc_authentication_init"),
    path("callback/", SsoCallbackView.as_view(), name="oidc_authentication_callback"),
]
