"""Log-in routes under DRF's namespace, so the browsable API links to them."""

from django.urls import path

from . import login

app_name = "rest_framework"

urlpatterns = [
    path("login/", login.login, name="login"),
    path("logout/", login.logout, name="logout"),
]
