"""Status Forwarding's table rows, rendered in Python.

At 50 rows a page the template engine's per-row work (two forms with their CSRF
token, counted and plain translations, date filters, dotted lookups) cost
several times the queries. This renders the same markup with plain string
building; every value from the database goes through `escape`, so no data
reaches the page as markup.
"""

from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from studies.rows import date_text, datetime_text, escape

from .selectors import BucketStatus


def _wrong_codes(count):
    text = ngettext("%(counter)s wrong code", "%(counter)s wrong codes", count)
    return f'<span class="muted small block">{escape(text % {"counter": count})}</span>'


def _status_cell(row, labels):
    bucket, status = row["bucket"], row["status"]
    if status == BucketStatus.REVOKED:
        html = f'<span class="badge badge-danger">{labels["revoked"]}</span>'
        if bucket.revoked_at:
            by = f" · {escape(bucket.revoked_by)}" if bucket.revoked_by else ""
            html += (
                f'<span class="muted small block">'
                f"{datetime_text(bucket.revoked_at)}{by}</span>"
            )
        return html
    if status == BucketStatus.EXPIRED:
        return f'<span class="badge badge-neutral">{labels["expired"]}</span>'
    if status == BucketStatus.LOCKED:
        return (
            f'<span class="badge badge-danger">{labels["locked"]}</span>'
            + _wrong_codes(bucket.failed_otp_attempts)
        )
    if status == BucketStatus.OPENED:
        return (
            f'<span class="badge badge-ok">{labels["opened"]}</span>'
            f'<span class="muted small block">'
            f"{datetime_text(bucket.first_opened_at)}</span>"
        )
    html = f'<span class="badge badge-warning">{labels["not_opened"]}</span>'
    if bucket.failed_otp_attempts:
        html += _wrong_codes(bucket.failed_otp_attempts)
    return html


def _url_of(name):
    """Return a function of a bucket id giving the URL `name` takes it in: one
    reverse() a page, not one a row."""
    head, tail = reverse(name, args=[1234567]).split("1234567", 1)
    return lambda pk: f"{head}{pk}{tail}"


def _actions(row, labels, hidden, urls):
    if not (row["can_unlock"] or row["can_revoke"]):
        return ""
    bucket = row["bucket"]
    html = '\n          <div class="row-actions">'
    if row["can_unlock"]:
        url = urls["unlock"](bucket.pk)
        html += (
            f'\n          <form method="post" action="{url}">{hidden}'
            f'\n            <button type="submit" class="button button-small '
            f'button-primary">{labels["unlock"]}</button>\n          </form>'
        )
    if row["can_revoke"]:
        url = urls["revoke"](bucket.pk)
        confirm = _(
            "Revoke access for %(recipient)s? They will be refused from their "
            "next click on."
        ) % {"recipient": bucket.recipient}
        html += (
            f'\n          <form method="post" action="{url}" class="confirm-form" '
            f'data-confirm="{escape(confirm)}">{hidden}'
            f'\n            <button type="submit" class="button button-small '
            f'button-danger">{labels["revoke"]}</button>\n          </form>'
        )
    return html + "\n          </div>"


def _study_item(study):
    # A study of the share, or what a re-sharer of anonymized data may see of it.
    if isinstance(study, dict):
        patient = study["patient"]
        name = patient["full_name"] or patient["patient_id"]
        description, study_date = study["description"], study["study_date"]
    else:
        name = study.patient.full_name or study.patient.patient_id
        description, study_date = study.description, study.study_date
    when = f" · {date_text(study_date)}" if study_date else ""
    return (
        f'\n            <li><span class="patient-name">{escape(name)}</span> '
        f'<span class="muted small">{escape(description)}{when}</span></li>'
    )


def _mail_cell(bucket, labels):
    mail = bucket.mail_status
    if mail == "sent":
        return f'<span class="badge badge-ok">{labels["sent"]}</span>'
    if mail == "failed":
        return f'<span class="badge badge-danger">{labels["failed"]}</span>'
    if mail == "stalled":
        return (
            f'<span class="badge badge-danger" title="{labels["stalled_title"]}">'
            f"{labels['stalled']}</span>"
        )
    if mail in ("pending", "sending"):
        return f'<span class="badge badge-warning">{labels["pending"]}</span>'
    if not bucket.send_mail:
        return f'<span class="muted small">{labels["no_mail"]}</span>'
    return '<span class="muted small">—</span>'


def bucket_rows_html(rows, request):
    """Return the <tr> rows of Status Forwarding for the view's `rows`."""
    labels = {
        key: escape(text)
        for key, text in (
            ("user", _("user")),
            ("group", _("group")),
            ("department", _("department")),
            ("sms", _("SMS code")),
            ("revoked", _("Revoked")),
            ("expired", _("Expired")),
            ("locked", _("Locked")),
            ("opened", _("Opened")),
            ("not_opened", _("Not yet opened")),
            ("unlock", _("Unlock")),
            ("revoke", _("Revoke")),
            ("anonymized", _("anonymized")),
            ("unlimited", _("Unlimited")),
            ("sent", _("sent")),
            ("failed", _("failed")),
            (
                "stalled_title",
                _(
                    "A worker took this mail and did not finish; it is queued "
                    "again automatically."
                ),
            ),
            ("stalled", _("sending (stalled)")),
            ("pending", _("pending")),
            ("no_mail", _("no mail")),
        )
    }
    # One CSRF input and one "next" for every form of the page.
    hidden = (
        f'<input type="hidden" name="csrfmiddlewaretoken" '
        f'value="{escape(get_token(request))}">'
        f'\n            <input type="hidden" name="next" '
        f'value="{escape(request.get_full_path())}">'
    )
    urls = {
        "unlock": _url_of("sharing:status_unlock"),
        "revoke": _url_of("sharing:status_revoke"),
    }
    parts = []
    for row in rows:
        bucket, share = row["bucket"], row["share"]
        if bucket.recipient_user_id:
            kind = labels["user"]
        elif bucket.recipient_group_id:
            kind = labels["group"]
        else:
            kind = labels["department"]
        if bucket.require_otp:
            kind += f" · {labels['sms']}"
        studies = "".join(_study_item(study) for study in row["studies"])
        anonymized = (
            f'<span class="badge badge-neutral small">{labels["anonymized"]}</span>'
            if share.anonymize
            else ""
        )
        department = (
            f'<span class="muted small block">{escape(share.source_department)}</span>'
            if share.source_department
            else ""
        )
        valid = (
            date_text(share.valid_until) if share.valid_until else labels["unlimited"]
        )
        parts.append(
            f'<tr id="bucket-{bucket.pk}" data-status="{escape(row["status"])}">\n'
            f"        <td>\n"
            f'          <span class="recipient">{escape(bucket.recipient)}</span>\n'
            f'          <span class="recipient-kind muted small">{kind}</span>\n'
            f"        </td>\n"
            f'        <td class="status-cell">\n'
            f"          {_status_cell(row, labels)}"
            f"{_actions(row, labels, hidden, urls)}\n"
            f"        </td>\n"
            f"        <td>\n"
            f'          <ul class="study-list">{studies}\n          </ul>\n'
            f"          {anonymized}\n"
            f"        </td>\n"
            f"        <td>{escape(share.sender)}{department}</td>\n"
            f'        <td class="nowrap">{datetime_text(share.created_at)}</td>\n'
            f'        <td class="nowrap">{valid}</td>\n'
            f'        <td class="nowrap">\n'
            f"          {_mail_cell(bucket, labels)}\n"
            f"        </td>\n"
            f"      </tr>\n"
        )
    return mark_safe("".join(parts))  # noqa: S308  (every value escaped above)
