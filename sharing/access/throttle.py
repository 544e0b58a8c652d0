"""Throttle link and SMS-code guessing, per client address and per session.

The counters are django-ratelimit's, in the default cache: Redis in production,
so every gunicorn worker counts the same attempts. A refused guess (an unknown
link, a request over the limit) is audited once per client and window: the
first refusal writes the event, later ones in that window count it up
(``details["count"]``), so a guessing run costs one row a minute, not one a
guess.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db import models
from django.shortcuts import render
from django_ratelimit.core import get_usage

from ..audit.record import audit_record, client_ip
from ..models import AuditEvent


class Scope(models.TextChoices):
    """What is being guessed; each has its own rate setting."""

    LINK = "link"
    CODE = "code"


TOO_MANY_ATTEMPTS = "too_many_attempts"


def _rate(scope):
    return (
        settings.ACCESS_LINK_RATE if scope == Scope.LINK else settings.ACCESS_CODE_RATE
    )


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _period(rate):
    """Return the seconds of a django-ratelimit rate such as "30/m" or "5/10m"."""
    period = rate.partition("/")[2]
    return int(period[:-1] or 1) * _PERIODS[period[-1]]


def _client(request):
    return client_ip(request) or "unknown"


def _by_client(group, request):
    return _client(request)


def _by_session(group, request):
    return request.session.session_key


@dataclass(frozen=True)
class Throttled:
    """Attempts over the limit: when the client may try again."""

    scope: str
    retry_after: int


def attempt_count(request, *, scope):
    """Count one attempt; return Throttled when its client or session is over.

    Anonymous visitors without a session are counted by address only.
    """
    rate = _rate(scope)
    keys = [_by_client]
    if request.session.session_key:
        keys.append(_by_session)
    retry_after = None
    for key in keys:
        usage = get_usage(
            request,
            group=f"pacsshare.access.{scope}.{key.__name__}",
            key=key,
            rate=rate,
            increment=True,
        )
        if usage is not None and usage["should_limit"]:
            retry_after = max(retry_after or 1, usage["time_left"])
    return None if retry_after is None else Throttled(scope, retry_after)


def audit_refusal_counted(request, refusal, *, scope, details=None):
    """Audit a refused guess as one event per client, refusal and window.

    The event is append-only but for its count: the first refusal of the
    window creates it, each later one in the window sets the count the cache
    holds (an atomic increment, shared by the workers).
    """
    period = _period(_rate(scope))
    window = int(time.time()) // period
    prefix = getattr(settings, "RATELIMIT_CACHE_PREFIX", "rl:")
    key = f"{prefix}audit:{scope}:{refusal}:{_client(request)}:{window}"
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    base = {
        "refusal": str(refusal),
        "scope": str(scope),
        "window_seconds": period,
        **(details or {}),
    }
    if cache.add(f"{key}:count", 1, period + 5):
        event = audit_record(
            action=AuditEvent.Action.ACCESS_REFUSED,
            request=request,
            details={**base, "count": 1},
        )
        cache.set(f"{key}:event", event.pk, period + 5)
        return
    try:
        count = cache.incr(f"{key}:count")
    except ValueError:  # expired between add and incr: too late to count it
        return
    event_id = cache.get(f"{key}:event")
    if event_id is not None:
        # Not .save(): AuditEvent refuses to change; only this window's count moves.
        AuditEvent.objects.filter(pk=event_id).update(details={**base, "count": count})


def too_many_attempts_response(request, throttled):
    """Audit the refusal and say that the client must wait (429)."""
    audit_refusal_counted(request, TOO_MANY_ATTEMPTS, scope=throttled.scope)
    minutes = max(1, -(-throttled.retry_after // 60))
    response = render(
        request,
        "sharing/access/too_many_attempts.html",
        {"minutes": minutes, "scope": throttled.scope},
        status=429,
    )
    response["Retry-After"] = str(throttled.retry_after)
    response._has_been_logged = True  # audited, once per window
    return response
