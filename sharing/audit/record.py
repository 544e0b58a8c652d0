"""The access log: one helper that every part of PACSshare calls to record an event.

An AuditEvent says who did what to which studies, from where (IP address and
user agent) and when (UTC). It never holds an OTP, a link token or the reason
for sharing (the share-created event, written by the wizard, is the one place
the reason is kept).
"""

import ipaddress

from django.conf import settings

from ..models import AuditEvent

USER_AGENT_MAX = AuditEvent._meta.get_field("user_agent").max_length
# Keys that must never reach the log, whatever a caller passes in `details`.
FORBIDDEN_DETAIL_KEYS = frozenset(
    {"otp", "code", "token", "link", "link_token", "password", "secret"}
)


def client_ip(request):
    """Return the client's IP address as the server can trust it, or None.

    REMOTE_ADDR is the peer. Behind TRUSTED_PROXY_COUNT reverse proxies, each
    proxy appends the address it saw to X-Forwarded-For, so the entry that many
    places from the right is the client; anything left of it is client-supplied.
    """
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def _study_uid(study):
    return study if isinstance(study, str) else study.study_instance_uid


def audit_record(**event):
    """Record one append-only AuditEvent (see audit_event) and return it."""
    record = audit_event(**event)
    record.save()
    return record


def audit_event(
    *,
    action,
    actor=None,
    request=None,
    share=None,
    bucket=None,
    studies=(),
    department=None,
    details=None,
):
    """Return an AuditEvent, not saved yet: one of several a request writes in
    one statement (AuditEvent.objects.bulk_create), or audit_record's.

    The department defaults to the share's (or the bucket's share's) source
    department, so a department's admins find every event about what it shared.
    `studies` takes Study objects or study instance UIDs.
    """
    if action not in AuditEvent.Action.values:
        raise ValueError(f"Unknown audit action {action!r}.")
    details = dict(details or {})
    leaked = FORBIDDEN_DETAIL_KEYS & set(details)
    if leaked:
        raise ValueError(f"Audit details may not contain {sorted(leaked)}.")
    if "reason" in details and action != AuditEvent.Action.SHARE_CREATED:
        raise ValueError("Only the share-created event keeps the reason.")
    if share is None and bucket is not None:
        share = bucket.share
    if department is None and share is not None:
        department = share.source_department
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor = user
    user_agent = ""
    if request is not None:
        user_agent = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX]
    return AuditEvent(
        action=action,
        actor=actor,
        department=department,
        share=share,
        bucket=bucket,
        study_uids=sorted({_study_uid(s) for s in studies}),
        ip_address=client_ip(request),
        user_agent=user_agent,
        details=details,
    )


def record_login_failed(sender, credentials, request=None, **kwargs):
    """Audit a failed login (a receiver of django's user_login_failed signal)."""
    username = str(credentials.get("username", ""))[:150]
    locked_out = bool(getattr(request, "axes_locked_out", False))
    audit_record(
        action=AuditEvent.Action.LOGIN_FAILED,
        request=request,
        details={"username": username, "locked_out": locked_out},
    )
