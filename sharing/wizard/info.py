"""The confirmation pop-up's information: what a share holds, for its sender."""

from django.template.loader import render_to_string
from django.utils.translation import gettext

from recipients.entries import members_without_email

from ..access.selectors import access_label


def share_info(share):
    """Return what the confirmation shows: studies, recipients, parameters."""
    hide_patient = share.anonymize or (
        share.parent_bucket is not None and share.parent_bucket.share.anonymize
    )
    studies = list(share.studies.select_related("patient").order_by("study_date", "pk"))
    buckets = list(
        share.buckets.select_related(
            "recipient_user", "recipient_group", "recipient_department"
        ).order_by("pk")
    )
    options = [
        label
        for enabled, label in (
            (share.urgent, gettext("Urgent")),
            (share.anonymize, gettext("Anonymized")),
            (share.allow_further_sharing, gettext("Further sharing allowed")),
        )
        if enabled
    ]
    mailed = [bucket for bucket in buckets if bucket.send_mail]
    names = members_without_email(
        group_pks=[b.recipient_group_id for b in mailed if b.recipient_group_id],
        department_pks=[
            b.recipient_department_id for b in mailed if b.recipient_department_id
        ],
    )
    for bucket in buckets:
        key = (
            f"group:{bucket.recipient_group_id}"
            if bucket.recipient_group_id
            else f"department:{bucket.recipient_department_id}"
        )
        bucket.not_mailed = names.get(key, []) if bucket in mailed else []
    return {
        "share": share,
        "studies": studies,
        "hide_patient": hide_patient,
        "buckets": buckets,
        "options": options,
        # As the recipient is told it: an anonymized share never opens the report.
        "access_label": access_label(share),
    }


def share_info_text(context):
    """Return the pop-up's information as plain text, for "Copy this information".

    The text template renders with autoescape off, and Django marks whatever a
    template renders as safe HTML; this text holds patient, recipient and label
    names from data, so it leaves here unmarked and a page escapes it.
    """
    rendered = render_to_string("sharing/wizard/share_info.txt", context)
    return str.__str__(rendered)
