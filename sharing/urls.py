from django.urls import path

from .access import pacs_views
from .access import viewer as viewer_views
from .access import views as access_views
from .status import views as status_views
from .wizard import views as wizard

app_name = "sharing"
urlpatterns = [
    # The share wizard (sharing/wizard/).
    path("share/", wizard.share_start, name="share_start"),
    # One wizard run per URL; the run-less form stands for the session's latest.
    path(
        "share/wizard/<str:run>/<str:step>/",
        wizard.ShareWizard.as_view(url_name="sharing:share_step"),
        name="share_run_step",
    ),
    path(
        "share/wizard/<str:step>/",
        wizard.ShareWizard.as_view(url_name="sharing:share_step"),
        name="share_step",
    ),
    path("share/<int:share_id>/", wizard.share_done, name="share_done"),
    path("share/<int:share_id>/again/", wizard.share_again, name="share_again"),
    path(
        "share/from-bucket/<int:bucket_id>/",
        wizard.reshare_start,
        name="reshare_start",
    ),
    # Status Forwarding and the access-log export (sharing/status/).
    path("status/", status_views.status_forwarding, name="status_forwarding"),
    path(
        "status/<int:bucket_id>/unlock/",
        status_views.status_bucket_action,
        {"action": "unlock"},
        name="status_unlock",
    ),
    path(
        "status/<int:bucket_id>/revoke/",
        status_views.status_bucket_action,
        {"action": "revoke"},
        name="status_revoke",
    ),
    path("status/audit.csv", status_views.audit_export, name="audit_export"),
    # Recipient access (sharing/access/): link, SMS code, received studies.
    path("b/invalid/", access_views.bucket_link_invalid, name="bucket_link_invalid"),
    path("b/<str:token>/", access_views.bucket_link, name="bucket_link"),
    path("received/<int:bucket_id>/", access_views.received, name="received"),
    path(
        "received/<int:bucket_id>/code/", access_views.bucket_code, name="bucket_code"
    ),
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/",
        viewer_views.received_study,
        name="received_study",
    ),
    # The viewer of a received study (sharing/access/viewer.py).
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/series/<int:series_id>/",
        viewer_views.received_series,
        name="received_series",
    ),
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/series/<int:series_id>/"
        "thumbnail.png",
        viewer_views.received_thumbnail,
        name="received_thumbnail",
    ),
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/instances/<int:instance_id>/"
        "frames/<int:frame>.<str:fmt>",
        viewer_views.received_frame,
        name="received_frame",
    ),
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/message/",
        viewer_views.received_message,
        name="received_message",
    ),
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/report/",
        viewer_views.received_report,
        name="received_report",
    ),
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/download.zip",
        viewer_views.received_download,
        name="received_download",
    ),
    # Send to my PACS (sharing/access/pacs_views.py).
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/send-to-pacs/",
        pacs_views.pacs_send,
        name="pacs_send",
    ),
    path(
        "received/<int:bucket_id>/studies/<int:study_id>/send-to-pacs/"
        "<int:transfer_id>/",
        pacs_views.pacs_progress,
        name="pacs_progress",
    ),
    path("shared-with-me/", access_views.shared_with_me, name="shared_with_me"),
]
