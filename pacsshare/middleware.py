"""Middleware for a product that shows patient data: session timeouts, no caching."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import SuspiciousOperation
from django.dispatch import receiver
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

SESSION_STARTED_KEY = "pacsshare_started_at"
SESSION_SEEN_KEY = "pacsshare_last_seen"
# Refresh the last-seen time at most this often (seconds), to spare session writes.
SEEN_RESOLUTION = 60


@receiver(user_logged_in, dispatch_uid="pacsshare.session_start")
def _start_session_clock(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[SESSION_STARTED_KEY] = now
        request.session[SESSION_SEEN_KEY] = now


class SessionTimeoutMiddleware:
    """Log a user out after SESSION_IDLE_TIMEOUT seconds without a request, and
    after SESSION_ABSOLUTE_TIMEOUT seconds since login, whatever they did."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request):
        session = request.session
        now = time.time()
        started = session.get(SESSION_STARTED_KEY)
        seen = session.get(SESSION_SEEN_KEY)
        if started is None or seen is None:
            session[SESSION_STARTED_KEY] = started or now
            session[SESSION_SEEN_KEY] = now
            return
        idle = now - seen > settings.SESSION_IDLE_TIMEOUT
        too_old = now - started > settings.SESSION_ABSOLUTE_TIMEOUT
        if idle or too_old:
            logout(request)
            messages.info(request, _("Your session expired. Please log in again."))
            return
        if now - seen >= SEEN_RESOLUTION:
            session[SESSION_SEEN_KEY] = now


class NoStoreMiddleware:
    """Forbid caching of anything served to a signed-in user (pages show patient
    data), unless the view chose its own Cache-Control (e.g. private frames)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not response.has_header("Cache-Control")
        ):
            add_never_cache_headers(response)
        return response


class NullCharacterInRequest(SuspiciousOperation):
    """A NUL character in the path or the query string."""


class RefuseNullCharactersMiddleware:
    """Answer 400 to a NUL character in the path or the query string.

    No text column accepts one (PostgreSQL refuses it outright), so a NUL that
    reached a filter or a search would end in a server error; nothing legitimate
    sends one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            raise NullCharacterInRequest("NUL character in the request")
        return self.get_response(request)
