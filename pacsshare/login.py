"""The login page: Django's, plus where a user lands and in which language."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import reverse
from django.utils import translation


class LoginView(auth_views.LoginView):
    """Log in; without a `next`, a user of no department lands on "Shared with
    me" (they have no department studies). The interface takes the profile's
    language from here on; the language switcher still overrides it."""

    def get_default_redirect_url(self):
        user = self.request.user
        if not user.is_department_member and not user.is_service_desk:
            return reverse("sharing:shared_with_me")
        return super().get_default_redirect_url()

    def form_valid(self, form):
        response = super().form_valid(form)
        language = form.get_user().language
        if language in dict(settings.LANGUAGES):
            translation.activate(language)
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response
