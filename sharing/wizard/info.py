"""The confirmation pop-up's information: what a share holds, for its sender."""

from django.utils.translation import gettext


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
    return {
        "share": share,
        "studies": studies,
        "hide_patient": hide_patient,
        "buckets": buckets,
        "options": options,
    }
