"""Login throttling: django-axes in front of Django's ModelBackend."""

from axes.backends import AxesStandaloneBackend


class ThrottlingBackend(AxesStandaloneBackend):
    """Refuse logins that django-axes has locked out.

    Every login over the web (the login page, the admin login) passes the
    request, and is throttled. Code that authenticates without a request (the
    test client's login(), management commands) has no client to lock out, so
    this backend steps aside and lets ModelBackend answer, instead of raising as
    axes does.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(
            request, username=username, password=password, **kwargs
        )
