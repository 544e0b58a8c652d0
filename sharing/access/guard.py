"""Recipient access: the one place that decides whether a request may see a bucket.

Every view that serves something through a bucket (the received study, its
series, frames, report and download, and the wizard's re-share) goes through
`get_bucket_for_request`, usually by way of the `bucket_view` decorator. It
checks, on every request, that the user is the bucket's recipient (the user, or a
member of its group or department), that the bucket is neither revoked, expired
nor locked, and, for a bucket with two-factor, that this session has entered the
SMS code for it. A refusal renders a page that says why, shows no study data, and
is audited.
"""

import functools

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Exists, OuterRef, Subquery
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from pacsshare.prepared import PreparedQuery
from recipients.models import User
from studies.models import ReportRevision

from ..audit.record import audit_record
from ..models import AuditEvent, Bucket, BucketOpening, Pseudonym, Share
from .selectors import (
    buckets_with_share,
    reaching_access_matters,
    with_reaching_access,
)

# The session keeps, per bucket id, that its SMS code was entered in this session.
SESSION_VERIFIED_KEY = "sharing.otp_verified_buckets"
# The session keeps, per bucket id, the page that asked for the code.
SESSION_CODE_NEXT_KEY = "sharing.otp_next_pages"


class Refusal(models.TextChoices):
    """Why a bucket is refused; the label is the title of the page that says so."""

    NOT_RECIPIENT = "not_recipient", gettext_lazy("This share is not for you")
    REVOKED = "revoked", gettext_lazy("Access to this share was withdrawn")
    EXPIRED = "expired", gettext_lazy("This share has expired")
    LOCKED = "locked", gettext_lazy("This share is locked")
    INVALID_LINK = "invalid_link", gettext_lazy("This link is not valid")


class AccessRefused(Exception):
    """The request may not see the bucket; `reason` is a Refusal."""

    def __init__(self, reason, bucket=None):
        super().__init__(reason)
        self.reason = reason
        self.bucket = bucket


class CodeRequired(Exception):
    """The bucket asks for an SMS code that this session has not entered yet."""

    def __init__(self, bucket):
        super().__init__("code required")
        self.bucket = bucket


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


def is_open_to(request, bucket):
    """Return whether this session may open the bucket without being asked a code."""
    return not bucket.require_otp or otp_is_verified(request, bucket)


def reaches(user, bucket):
    """Return whether the bucket was sent to the user, to one of their groups or
    to one of their departments (recipient_q, for one bucket already read)."""
    if not user.is_authenticated:
        return False
    if bucket.recipient_user_id is not None and bucket.recipient_user_id == user.pk:
        return True
    if (
        bucket.recipient_department_id is not None
        and bucket.recipient_department_id in user.department_ids
    ):
        return True
    return (
        bucket.recipient_group_id is not None
        and user.user_groups.filter(pk=bucket.recipient_group_id).exists()
    )


def _page_bucket(*, bucket_id, user_id):
    # Whether this user opened it before comes along: a later visit to the
    # study page then writes no opening and reads none.
    return (
        buckets_with_share()
        .annotate(
            opened_by_user=Exists(
                BucketOpening.objects.filter(bucket=OuterRef("pk"), user_id=user_id)
            )
        )
        .filter(pk=bucket_id)
        .order_by("pk")[:1]
    )


def _checked_bucket(*, bucket_id):
    # The checks' columns only: the bucket, its share and the zone of the
    # share's department (expiry).
    return (
        Bucket.objects.select_related("share__source_department")
        .filter(pk=bucket_id)
        .order_by("pk")[:1]
    )


# Read on every request of a recipient: compiled once (pacsshare.prepared).
_PAGE_BUCKET = PreparedQuery(_page_bucket)
_CHECKED_BUCKET = PreparedQuery(_checked_bucket)


def get_bucket_for_request(request, bucket_id, *, require_code=True, page=True):
    """Return the bucket if this request may see it; raise otherwise.

    Raises AccessRefused (not the recipient, or a guessed id; revoked; expired;
    locked) after auditing the attempt, and CodeRequired when the bucket has
    two-factor and this session has not entered its code (unless require_code
    is False, as on the code page itself).

    With ``page=False`` (DICOMweb: many small requests, no page) the same checks
    run on the bucket, its share and its department alone, without what a page
    shows of them.
    """
    user = request.user
    bucket = None
    if user.is_authenticated:
        # Whom it was sent to is checked on the row (reaches): the query stays
        # a primary-key read.
        if page:
            bucket = _PAGE_BUCKET.first(bucket_id=int(bucket_id), user_id=user.pk)
        else:
            bucket = _CHECKED_BUCKET.first(bucket_id=int(bucket_id))
    if bucket is None or not reaches(user, bucket):
        # A bucket of someone else and an id that does not exist look the same to
        # the visitor (the AccessRefused carries no bucket); the log names the
        # bucket of someone else, so its sending department sees the attempt.
        audit_refusal(
            request, Refusal.NOT_RECIPIENT, bucket=bucket, bucket_id=bucket_id
        )
        raise AccessRefused(Refusal.NOT_RECIPIENT)
    reason = refusal_of(bucket)
    if reason is not None:
        audit_refusal(request, reason, bucket=bucket)
        raise AccessRefused(reason, bucket)
    if require_code and not is_open_to(request, bucket):
        raise CodeRequired(bucket)
    return bucket


def may_reshare(bucket):
    """Return whether the recipient of an authorized bucket may share it on."""
    return bucket.share.allow_further_sharing


def check_reshare(bucket):
    """Raise PermissionDenied unless the authorized bucket may be shared on."""
    if not may_reshare(bucket):
        raise PermissionDenied("This share does not allow further sharing.")


def get_bucket_for_reshare(request, bucket_id):
    """Return the bucket a recipient shares on, authorized as any bucket request is.

    Refused (403) unless the bucket reaches this user, is valid, its SMS code was
    entered in this session when it asks for one, and it allows further sharing.
    """
    try:
        bucket = get_bucket_for_request(request, bucket_id)
    except (AccessRefused, CodeRequired):
        raise PermissionDenied("You may not share these studies.") from None
    check_reshare(bucket)
    return bucket


def audit_refusal(request, reason, *, bucket=None, bucket_id=None):
    """Record a refused attempt: who, from where, which bucket, and why."""
    match = getattr(request, "resolver_match", None)
    details = {"refusal": str(reason), "path_name": match.view_name if match else ""}
    if bucket is None and bucket_id is not None:
        details["bucket_id"] = str(bucket_id)[:20]
    audit_record(
        action=AuditEvent.Action.ACCESS_REFUSED,
        request=request,
        bucket=bucket,
        details=details,
    )


def refusal_response(request, refused):
    """Render the page that says why a bucket is refused, without study data."""
    bucket = refused.bucket
    status = 404 if refused.reason == Refusal.NOT_RECIPIENT else 403
    response = render(
        request,
        "sharing/access/refused.html",
        {
            "reason": refused.reason,
            "title": Refusal(refused.reason).label,
            "department": bucket.share.source_department if bucket else None,
            "sender": bucket.share.sender if bucket else None,
            "expired_on": bucket.share.valid_until if bucket else None,
        },
        status=status,
    )
    # The refusal is audited with its reason; django.request need not log the path.
    response._has_been_logged = True
    return response


def bucket_view(view=None, *, image=False):
    """Decorate a view of `(request, bucket, ...)` taking `bucket_id` from the URL.

    The user must be logged in; the bucket is authorized on every request; a
    refusal renders its page. A page without the SMS code leads to the code page
    and is never cached. An image (`image=True`) may stay in this user's browser
    cache (`Cache-Control: private`, set by studies.viewer), and a missing code
    is a plain 403, not a redirect an <img> cannot follow.
    """
    if view is None:
        return functools.partial(bucket_view, image=image)

    @functools.wraps(view)
    def wrapper(request, bucket_id, *args, **kwargs):
        try:
            bucket = get_bucket_for_request(request, bucket_id)
        except AccessRefused as refused:
            return refusal_response(request, refused)
        except CodeRequired:
            if image:
                return HttpResponseForbidden(_("Enter the code from the SMS first."))
            # After the code, the recipient comes back to the page they asked for.
            pages = dict(request.session.get(SESSION_CODE_NEXT_KEY, {}))
            pages[str(bucket_id)] = request.path
            request.session[SESSION_CODE_NEXT_KEY] = pages
            return redirect("sharing:bucket_code", bucket_id=bucket_id)
        return view(request, bucket, *args, **kwargs)

    return login_required(wrapper if image else never_cache(wrapper))


def next_page_of_bucket(request, bucket):
    """Return the page of this bucket that asked for its code (remembered in the
    session by `bucket_view`), else the bucket's own page."""
    target = request.session.get(SESSION_CODE_NEXT_KEY, {}).get(str(bucket.pk), "")
    if target:
        try:
            match = resolve(target)
        except Resolver404:
            match = None
        if (
            match is not None
            and match.url_name in BUCKET_PAGES
            and match.kwargs.get("bucket_id") == bucket.pk
        ):
            return target
    return reverse("sharing:received", kwargs={"bucket_id": bucket.pk})


# The recipient's pages the code page may lead back to.
BUCKET_PAGES = frozenset({"received", "received_study"})


def get_study_of_bucket(bucket, study_id, *, request=None):
    """Return a study the bucket holds, with its patient, or raise 404.

    For the study's page (`request` given), its report and what the page needs
    come in the same query: `share_study_count` (the studies of the share),
    `report_has_revisions` and the access the user's other buckets give
    (with_reaching_access).
    """
    if request is None:
        study = (
            bucket.share.studies.select_related("patient").filter(pk=study_id).first()
        )
    else:
        open_ids = [int(pk) for pk in request.session.get(SESSION_VERIFIED_KEY, [])]
        study = _PAGE_STUDY.first(
            share_id=bucket.share_id,
            study_id=int(study_id),
            user_id=request.user.pk,
            bucket_id=bucket.pk,
            open_ids=open_ids,
            reaching=reaching_access_matters(bucket),
        )
    if study is None:
        raise Http404("No such study in this share.")
    return study


def _page_study(*, share_id, study_id, user_id, bucket_id, open_ids, reaching):
    studies = with_reaching_access(
        Share(pk=share_id).studies.select_related("patient", "report"),
        user=User(pk=user_id),
        bucket_id=bucket_id,
        open_ids=open_ids,
        matters=reaching,
    )
    return studies.annotate(
        share_study_count=Subquery(
            Share.studies.through.objects.filter(share_id=share_id)
            .values("share_id")
            .annotate(n=Count("pk"))
            .values("n")
        ),
        report_has_revisions=Exists(
            ReportRevision.objects.filter(report__study=OuterRef("pk"))
        ),
    ).filter(pk=study_id)[:1]


# The received study's read, on every page of it: compiled once per shape.
_PAGE_STUDY = PreparedQuery(_page_study)


def patient_shown(bucket, patient, *, in_list=False):
    """Return what the recipient may see of the patient (a pseudonym if anonymized).

    Uses the bucket's prefetched pseudonyms where there are (or the list
    buckets_of_rows gives it). A list of many
    buckets (`in_list`) makes none that is missing, so it costs no query per row,
    and shows "Anonymous" until the study's own page has made it.
    """
    if not bucket.share.anonymize:
        return {
            "family_name": patient.family_name,
            "given_name": patient.given_name,
            "patient_id": patient.patient_id,
            "birth_date": patient.birth_date,
            "sex": patient.sex,
            "anonymized": False,
        }
    listed = getattr(bucket, "listed_pseudonyms", None)  # buckets_of_rows
    pseudonym = next(
        (
            p
            for p in (bucket.pseudonyms.all() if listed is None else listed)
            if p.patient_id == patient.pk
        ),
        None,
    )
    if pseudonym is None:
        pseudonym = (
            Pseudonym(family_name="Anonymous", given_name="", pseudo_patient_id="")
            if in_list
            else Pseudonym.objects.for_patient(bucket=bucket, patient=patient)
        )
    return {
        "family_name": pseudonym.family_name,
        "given_name": pseudonym.given_name,
        "patient_id": pseudonym.pseudo_patient_id,
        "birth_date": None,
        "sex": "",
        "anonymized": True,
    }
