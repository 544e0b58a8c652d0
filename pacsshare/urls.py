from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from .login import LoginView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="studies:overview"), name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("studies.urls")),
    path("", include("recipients.urls")),
    path("", include("sharing.urls")),
]

if settings.DEBUG:
    urlpatterns += [path("dev/", include("pacsshare.dev_urls"))]
