"""Recipient access: the one place that decides whether a request may see a bucket.

Every view that serves something through a bucket (the received study, and later
its series, frames, report and downloads) goes through `get_bucket_for_request`,
usually by way of the `bucket_view` decorator. It checks, on every request, that
the user is the bucket's recipient (the user, or a member of its group or
department), that the bucket is neither revoked, expired nor locked, and, for a
bucket with two-factor, that this session has entered the SMS code for it.
A refusal renders a page that says why, shows no study data, and is audited.
"""

import datetime
import functools
import secrets

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from .audit import audit_record
from .models import AuditEvent, Bucket, BucketOpening, Pseudonym

# The session keeps, per bucket id, that its SMS code was entered in this session.
SESSION_VERIFIED_KEY = "sharing.otp_verified_buckets"


class Refusal:
    """Why a bucket is refused: one of these reasons, each with its own page text."""

    NOT_RECIPIENT = "not_recipient"
    REVOKED = "revoked"
    EXPIRED = "expired"
    LOCKED = "locked"

    TITLES = {
        NOT_RECIPIENT: _("This share is not for you"),
        REVOKED: _("Access to this share was withdrawn"),
        EXPIRED: _("This share has expired"),
        LOCKED: _("This share is locked"),
    }


class AccessRefused(Exception):
    """The request may not see the bucket; `reason` is one of Refusal's values."""

    def __init__(self, reason, bucket=None):
        super().__init__(reason)
        self.reason = reason
        self.bucket = bucket


class CodeRequired(Exception):
    """The bucket asks for an SMS code that this session has not entered yet."""

    def __init__(self, bucket):
        super().__init__("code required")
        self.bucket = bucket


def _recipient_q(user):
    return (
        Q(recipient_user=user)
        | Q(recipient_group__in=user.user_groups.all())
        | Q(recipient_department__in=user.departments.all())
    )


def _buckets_with_share():
    return Bucket.objects.select_related(
        "share",
        "share__source_department",
        "share__sender",
        "share__label",
        "recipient_user",
        "recipient_group",
        "recipient_department",
    )


def refusal_of(bucket):
    """Return why a bucket of the user's is refused now, or None when it opens."""
    if bucket.is_revoked:
        return Refusal.REVOKED
    if bucket.is_expired:
        return Refusal.EXPIRED
    if bucket.is_locked:
        return Refusal.LOCKED
    return None


def otp_is_verified(request, bucket):
    """Return whether this session entered the right SMS code for this bucket."""
    return str(bucket.pk) in request.session.get(SESSION_VERIFIED_KEY, [])


def otp_mark_verified(request, bucket):
    """Remember in the session, for this bucket only, that its code was entered."""
    verified = set(request.session.get(SESSION_VERIFIED_KEY, []))
    verified.add(str(bucket.pk))
    request.session[SESSION_VERIFIED_KEY] = sorted(verified)


def get_bucket_for_request(request, bucket_id, *, require_code=True):
    """Return the bucket if this request may see it; raise otherwise.

    Raises AccessRefused (not the recipient, or a guessed id; revoked; expired;
    locked) after auditing the attempt, and CodeRequired when the bucket has
    two-factor and this session has not entered its code (unless require_code
    is False, as on the code page itself).
    """
    user = request.user
    bucket = None
    if user.is_authenticated:
        bucket = _buckets_with_share().filter(_recipient_q(user), pk=bucket_id).first()
    if bucket is None:
        # A bucket of someone else and an id that does not exist look the same.
        audit_refusal(request, Refusal.NOT_RECIPIENT, bucket_id=bucket_id)
        raise AccessRefused(Refusal.NOT_RECIPIENT)
    reason = refusal_of(bucket)
    if reason is not None:
        audit_refusal(request, reason, bucket=bucket)
        raise AccessRefused(reason, bucket)
    if require_code and bucket.require_otp and not otp_is_verified(request, bucket):
        raise CodeRequired(bucket)
    return bucket


def audit_refusal(request, reason, *, bucket=None, bucket_id=None):
    """Record a refused attempt: who, from where, which bucket, and why."""
    details = {"refusal": reason, "path_name": _path_name(request)}
    if bucket is None and bucket_id is not None:
        details["bucket_id"] = str(bucket_id)[:20]
    audit_record(
        action=AuditEvent.Action.ACCESS_REFUSED,
        request=request,
        bucket=bucket,
        details=details,
    )


def _path_name(request):
    match = getattr(request, "resolver_match", None)
    return match.view_name if match else ""


def refusal_response(request, refused):
    """Render the page that says why a bucket is refused, without study data."""
    bucket = refused.bucket
    status = 404 if refused.reason == Refusal.NOT_RECIPIENT else 403
    response = render(
        request,
        "sharing/access/refused.html",
        {
            "reason": refused.reason,
            "title": Refusal.TITLES[refused.reason],
            "department": bucket.share.source_department if bucket else None,
            "sender": bucket.share.sender if bucket else None,
            "expired_on": bucket.share.valid_until if bucket else None,
        },
        status=status,
    )
    # The refusal is audited with its reason; django.request need not log the path.
    response._has_been_logged = True
    return response


def bucket_view(view):
    """Decorate a view of `(request, bucket, ...)` taking `bucket_id` from the URL.

    The user must be logged in; the bucket is authorized on every request;
    a refusal renders its page, a missing SMS code leads to the code page.
    """

    @functools.wraps(view)
    @login_required
    @never_cache
    def wrapper(request, bucket_id, *args, **kwargs):
        try:
            bucket = get_bucket_for_request(request, bucket_id)
        except AccessRefused as refused:
            return refusal_response(request, refused)
        except CodeRequired:
            return redirect("sharing:bucket_code", bucket_id=bucket_id)
        return view(request, bucket, *args, **kwargs)

    return wrapper


def get_study_of_bucket(bucket, study_id):
    """Return a study the bucket holds, with its patient, or raise 404."""
    study = (
        bucket.share.studies.select_related("patient", "department")
        .filter(pk=study_id)
        .first()
    )
    if study is None:
        raise Http404("No such study in this share.")
    return study


def pseudonym_for(*, bucket, patient):
    """Return the name an anonymized bucket shows for a patient, creating it once."""
    existing = Pseudonym.objects.filter(bucket=bucket, patient=patient).first()
    if existing is not None:
        return existing
    pseudonym, _created = Pseudonym.objects.get_or_create(
        bucket=bucket,
        patient=patient,
        defaults={
            "given_name": str(secrets.randbelow(900000) + 100000),
            "family_name": "Anonymous",
            "pseudo_patient_id": f"ANON-{bucket.pk}-{secrets.token_hex(4).upper()}",
        },
    )
    return pseudonym


def _maybe_expired_cutoff():
    """Return the earliest valid-till date that may still be open somewhere.

    The day ends at midnight in the department's zone; zones run from UTC-12 to
    UTC+14, so a valid-till before yesterday (UTC) is over everywhere. The rest
    is checked exactly in Python with Bucket.is_expired.
    """
    return timezone.now().date() - datetime.timedelta(days=1)


def buckets_received_by(*, user):
    """Return the user's buckets that still show: not revoked, not expired.

    A bucket counts when it was sent to the user, to one of their groups or to one
    of their departments. Locked buckets stay (they show as locked). Each bucket
    comes with its share, sender, department, label, studies and patients,
    pseudonyms, and this user's first opening, in a fixed number of queries.
    """
    if not user.is_authenticated:
        return []
    from studies.models import Study

    candidates = (
        _buckets_with_share()
        .filter(_recipient_q(user))
        .filter(revoked_at__isnull=True, share__revoked_at__isnull=True)
        .filter(
            Q(share__valid_until__isnull=True)
            | Q(share__valid_until__gte=_maybe_expired_cutoff())
        )
        .prefetch_related(
            Prefetch(
                "share__studies",
                queryset=Study.objects.select_related("patient").order_by(
                    "-study_date", "-id"
                ),
            ),
            "pseudonyms",
            Prefetch(
                "openings",
                queryset=BucketOpening.objects.filter(user=user),
                to_attr="openings_by_user",
            ),
        )
        .order_by("-share__created_at", "-id")
    )
    return [bucket for bucket in candidates if not bucket.is_expired]


def bucket_mark_opened(*, bucket, user, study, request=None):
    """Record that the user opened a study of the bucket; audit it.

    The first opening of the bucket by this user is kept (the "Message" label
    turns green) and True is returned; later ones return False.
    """
    _opening, created = BucketOpening.objects.get_or_create(bucket=bucket, user=user)
    audit_record(
        action=AuditEvent.Action.BUCKET_OPENED,
        request=request,
        actor=user,
        bucket=bucket,
        studies=[study],
        details={"first": created},
    )
    return created
