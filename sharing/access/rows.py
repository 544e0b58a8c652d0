"""The "Shared with me" table rows, rendered in Python.

Like the overview's rows (studies/rows.py): the same markup as a template
would give, with plain string building, every value from the database escaped.
"""

from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from studies.rows import DASH, date_text, datetime_text, escape


def _labels_cell(row, labels):
    share = row["share"]
    parts = []
    if row["locked"]:
        parts.append(
            f'<span class="badge badge-locked" title="{labels["locked_title"]}">'
            f"{labels['locked']}</span>"
        )
    if share.urgent:
        parts.append(f'<span class="badge badge-urgent">{labels["urgent"]}</span>')
    if share.label:
        parts.append(
            f'<span class="badge badge-label">{escape(share.label.name)}</span>'
        )
    if share.message:
        if row["opened"]:
            parts.append(
                f'<span class="badge badge-message-read" '
                f'title="{labels["message_read"]}">{labels["message"]}'
                f'<span class="visually-hidden"> ({labels["read"]})</span></span>'
            )
        else:
            parts.append(
                f'<span class="badge badge-message-unread" '
                f'title="{labels["message_unread"]}">{labels["message"]}'
                f'<span class="visually-hidden"> ({labels["not_read"]})</span></span>'
            )
    return "\n          ".join(parts)


def received_rows_html(rows):
    """Return the <tr> rows of "Shared with me" for the view's `rows`."""
    labels = {
        key: escape(text)
        for key, text in (
            ("study_date", _("Study date")),
            ("description", _("Description")),
            ("shared_by", _("Shared by")),
            ("shared_on", _("Shared on")),
            ("valid_till", _("Valid till")),
            ("access", _("Access")),
            ("labels", _("Labels")),
            ("unlimited", _("Unlimited")),
            (
                "locked_title",
                _("Locked after five wrong codes: contact the sending department"),
            ),
            ("locked", _("Locked")),
            ("urgent", _("Urgent")),
            ("message_read", _("Message read")),
            ("message_unread", _("Message not read yet")),
            ("message", _("Message")),
            ("read", _("read")),
            ("not_read", _("not read yet")),
        )
    }
    # One reverse for the page; each row's URL differs only in the two ids.
    url = reverse(
        "sharing:received_study", kwargs={"bucket_id": 1234567, "study_id": 7654321}
    )
    head, rest = url.split("1234567", 1)
    middle, tail = rest.split("7654321", 1)
    parts = []
    for row in rows:
        bucket, share, study, patient = (
            row["bucket"],
            row["share"],
            row["study"],
            row["patient"],
        )
        given = f", {escape(patient['given_name'])}" if patient["given_name"] else ""
        modalities = (
            f' <span class="badge">{escape(study.modalities)}</span>'
            if study.modalities
            else ""
        )
        department = (
            escape(share.source_department.name) if share.source_department else ""
        )
        valid = (
            date_text(share.valid_until) if share.valid_until else labels["unlimited"]
        )
        parts.append(
            f'<tr class="{"is-locked" if row["locked"] else ""}">\n'
            f'        <td class="col-patient">\n'
            f'          <a class="patient-link" href="{head}{bucket.pk}{middle}'
            f'{study.pk}{tail}"><span class="family-name">'
            f"{escape(patient['family_name'] or DASH)}</span>{given}</a>\n"
            f"        </td>\n"
            f'        <td class="nowrap" data-label="{labels["study_date"]}">'
            f"{date_text(study.study_date)}</td>\n"
            f'        <td data-label="{labels["description"]}">'
            f"{escape(study.description or DASH)}{modalities}</td>\n"
            f'        <td class="col-sender" data-label="{labels["shared_by"]}">'
            f'{escape(share.sender)}<br><span class="muted small">{department}'
            f"</span></td>\n"
            f'        <td class="nowrap" data-label="{labels["shared_on"]}">'
            f"{datetime_text(share.created_at)}</td>\n"
            f'        <td class="nowrap" data-label="{labels["valid_till"]}">'
            f"{valid}</td>\n"
            f'        <td data-label="{labels["access"]}">'
            f"{escape(row['access_label'])}</td>\n"
            f'        <td class="col-labels" data-label="{labels["labels"]}">\n'
            f"          {_labels_cell(row, labels)}\n"
            f"        </td>\n"
            f"      </tr>\n"
        )
    return mark_safe("".join(parts))  # noqa: S308  (every value escaped above)
