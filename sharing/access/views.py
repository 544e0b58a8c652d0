"""What a recipient sees first: the e-mail link, the SMS code page, a bucket's
list of studies, and the "Shared with me" tab of the overview.

Every page that shows something of a bucket is authorized by sharing.access.guard;
the received study and its viewer are in sharing.access.viewer.
"""

import re

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from pacsshare.paginator import CappedPaginator

from ..models import Bucket, hash_secret
from .guard import (
    AccessRefused,
    Refusal,
    bucket_view,
    get_bucket_for_request,
    is_open_to,
    next_page_of_bucket,
    otp_mark_verified,
    patient_shown,
    refusal_response,
)
from .otp import (
    SendStatus,
    VerifyStatus,
    code_on_its_way,
    code_pending,
    cooldown_until,
    otp_device_get,
    otp_send,
    otp_verify,
)
from .rows import received_rows_html
from .selectors import (
    access_label,
    buckets_of_rows,
    studies_of_rows,
    studies_received_by,
)
from .throttle import (
    Scope,
    attempt_count,
    audit_refusal_counted,
    too_many_attempts_response,
)

# Link tokens are 43 URL-safe base64 characters (256 bits); anything else is noise.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
ROWS_PER_PAGE = 50


def _no_referrer(response):
    # Only on responses to /b/<token>/, which never hold a form: with no-referrer,
    # browsers send "Origin: null" on a POST and the CSRF check would refuse it.
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
def bucket_link(request, token):
    """Swap the e-mail link's token for the bucket id and redirect without it.

    An anonymous visitor logs in first; the login's `next` names the bucket page,
    never the token. An unknown token is audited and sent to a token-free page
    that says so, so the token is in no URL after the first. Guessing is
    throttled per address and session; unknown links are audited once a window.
    """
    throttled = attempt_count(request, scope=Scope.LINK)
    if throttled is not None:
        return _no_referrer(too_many_attempts_response(request, throttled))
    bucket = None
    if TOKEN_RE.match(token):
        bucket = Bucket.objects.filter(token_hash=hash_secret(token)).first()
    if bucket is None:
        audit_refusal_counted(request, Refusal.INVALID_LINK, scope=Scope.LINK)
        return _no_referrer(redirect("sharing:bucket_link_invalid"))
    target = reverse("sharing:received", kwargs={"bucket_id": bucket.pk})
    if not request.user.is_authenticated:
        return _no_referrer(redirect_to_login(target))
    return _no_referrer(redirect(target))


def bucket_link_invalid(request):
    """Say that an e-mail link is not valid (404), without repeating the token."""
    response = render(request, "sharing/access/link_invalid.html", status=404)
    response._has_been_logged = True  # audited when the link was followed
    return response


class CodeInput(forms.TextInput):
    """A text input that starts empty after each try: a failed code is not kept."""

    def format_value(self, value):
        return None


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from the SMS"),
        max_length=12,
        widget=CodeInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]*",
                "autofocus": True,
                "size": 8,
            }
        ),
    )

    def clean_code(self):
        code = "".join(self.cleaned_data["code"].split())
        if not re.fullmatch(r"\d{6}", code):
            raise forms.ValidationError(_("Enter the 6 digits of the code."))
        return code


def _sent_message(result):
    if result.status == SendStatus.SENT:
        return messages.SUCCESS, _("A new code is on its way.")
    if result.status == SendStatus.COOLDOWN:
        seconds = max(1, int((result.retry_at - timezone.now()).total_seconds()))
        return messages.WARNING, _(
            "Please wait %(seconds)s seconds before asking for another code."
        ) % {"seconds": seconds}
    if result.status == SendStatus.HOURLY_CAP:
        when = formats.time_format(timezone.localtime(result.retry_at), "H:i")
        return messages.WARNING, _(
            "You have asked for many codes in the last hour. "
            "You can ask for a new one at %(time)s."
        ) % {"time": when}
    if result.status == SendStatus.NO_MOBILE:
        return messages.ERROR, _(
            "Your account has no mobile number, so no code can be sent. "
            "Please contact the department that shared this study."
        )
    return messages.ERROR, _("This share is locked.")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def bucket_code(request, bucket_id):
    """Ask for the SMS code of a bucket with two-factor; send one on arrival.

    Posts (codes and resends) are throttled per address and session.
    """
    if request.method == "POST":
        throttled = attempt_count(request, scope=Scope.CODE)
        if throttled is not None:
            return too_many_attempts_response(request, throttled)
    try:
        bucket = get_bucket_for_request(request, bucket_id, require_code=False)
    except AccessRefused as refused:
        return refusal_response(request, refused)
    received_url = next_page_of_bucket(request, bucket)
    if is_open_to(request, bucket):
        return redirect(received_url)

    user = request.user
    device = otp_device_get(bucket=bucket, user=user)
    form = CodeForm()
    if request.method == "POST" and "resend" in request.POST:
        level, text = _sent_message(otp_send(bucket=bucket, user=user, request=request))
        messages.add_message(request, level, text)
        return redirect("sharing:bucket_code", bucket_id=bucket.pk)
    if request.method == "POST":
        form = CodeForm(request.POST)
        if form.is_valid():
            result = otp_verify(
                bucket=bucket,
                user=user,
                code=form.cleaned_data["code"],
                request=request,
            )
            if result.ok:
                otp_mark_verified(request, bucket)
                return redirect(received_url)
            if result.status == VerifyStatus.LOCKED:
                # The locked page comes from the one authorization helper.
                return redirect("sharing:bucket_code", bucket_id=bucket.pk)
            if result.status == VerifyStatus.WRONG:
                form.add_error(
                    "code",
                    ngettext(
                        "This code is not right. One more wrong code will lock "
                        "this share.",
                        "This code is not right. After %(left)s more wrong codes "
                        "this share will be locked.",
                        result.attempts_left,
                    )
                    % {"left": result.attempts_left},
                )
            else:
                form.add_error(
                    "code",
                    _("This code is no longer valid. Ask for a new code below."),
                )
    sent_now = False
    may_send = not code_pending(device) and cooldown_until(device) is None
    if request.method == "GET" and may_send and user.mobile:
        # Opening the bucket sends the code (rule 18); cool-down and cap still hold.
        result = otp_send(bucket=bucket, user=user, request=request)
        sent_now = result.sent
        if not result.sent:
            level, text = _sent_message(result)
            messages.add_message(request, level, text)
        device.refresh_from_db()

    wait_until = cooldown_until(device)
    wait_seconds = (
        max(1, int((wait_until - timezone.now()).total_seconds())) if wait_until else 0
    )
    # The page says a code was sent only when one was, and still counts.
    code_sent = bool(user.mobile) and (sent_now or code_on_its_way(device))
    bucket.refresh_from_db(fields=["failed_otp_attempts"])
    return render(
        request,
        "sharing/access/code.html",
        {
            "bucket": bucket,
            "share": bucket.share,
            "form": form,
            "mobile_ending": user.mobile_last_digits,
            "has_mobile": bool(user.mobile),
            "wait_seconds": wait_seconds,
            "wait_until": timezone.localtime(wait_until) if wait_until else None,
            "code_sent": code_sent,
            "study_count": bucket.share.studies.count(),
            "attempts_left": bucket.MAX_FAILED_OTP - bucket.failed_otp_attempts,
        },
    )


@bucket_view
def received(request, bucket):
    """Open a bucket: its one study directly, or the list of its studies."""
    studies = list(
        bucket.share.studies.select_related("patient").order_by("-study_date")
    )
    if len(studies) == 1:
        return redirect(
            "sharing:received_study", bucket_id=bucket.pk, study_id=studies[0].pk
        )
    rows = [
        {"study": study, "patient": patient_shown(bucket, study.patient)}
        for study in studies
    ]
    return render(
        request,
        "sharing/access/received_bucket.html",
        {
            "bucket": bucket,
            "share": bucket.share,
            "rows": rows,
            "access_label": access_label(bucket.share),
        },
    )


def _patient_in_row(request, bucket, patient):
    shown = patient_shown(bucket, patient, in_list=True)
    if not is_open_to(request, bucket):
        # Until the SMS code is entered, the list shows what the e-mail shows.
        initials = "".join(
            f"{name[0]}."
            for name in (shown["given_name"], shown["family_name"])
            if name
        )
        shown = {**shown, "family_name": initials, "given_name": ""}
    return shown


@login_required
def shared_with_me(request):
    """The overview's "Shared with me" tab: studies of the user's valid buckets.

    The page's 50 rows are cut in the database (one row per study of a bucket),
    then only their buckets are read: a user holding hundreds of shares costs
    the same queries and the same Python as one holding 50.
    """
    rows_of = studies_received_by(user=request.user)
    page = CappedPaginator(rows_of, ROWS_PER_PAGE).get_page_counting_rows(
        request.GET.get("page")
    )
    links = list(page.object_list)
    studies = studies_of_rows(study_ids={link["study_id"] for link in links})
    buckets = buckets_of_rows(
        bucket_ids={link["bucket_id"] for link in links}, user=request.user
    )
    rows = []
    for link in links:
        bucket, study = buckets[link["bucket_id"]], studies[link["study_id"]]
        share = bucket.share
        rows.append(
            {
                "bucket": bucket,
                "share": share,
                "study": study,
                "patient": _patient_in_row(request, bucket, study.patient),
                "opened": bucket.opened,
                "access_label": access_label(share),
                "locked": bucket.is_locked,
            }
        )
    return render(
        request,
        "sharing/access/shared_with_me.html",
        {
            "page": page,
            "rows": rows,
            "rows_html": received_rows_html(rows),
            "tab": "shared",
        },
    )
