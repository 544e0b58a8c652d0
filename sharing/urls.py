from django.urls import path, register_converter

from .access import dicomweb, pacs_views
from .access import ohif as ohif_views
from .access import viewer as viewer_views
from .access import views as access_views
from .status import views as status_views
from .wizard import views as wizard


class UidConverter:
    """A DICOM UID in a DICOMweb path (digits and dots, at most 64)."""

    regex = r"[0-9.]{1,64}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


class FramesConverter:
    """A DICOMweb frame list: "1" or "1,3,5"."""

    regex = r"[0-9]{1,6}(?:,[0-9]{1,6}){0,999}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return str(value)


register_converter(UidConverter, "uid")
register_converter(FramesConverter, "frames")

# A bucket's DICOMweb root (sharing/access/dicomweb.py): no trailing slashes, as
# DICOMweb clients build the paths.
DICOMWEB = "received/<int:bucket_id>/dicom-web/"
STUDY = DICOMWEB + "studies/<uid:study>"
SERIES = STUDY + "/series/<uid:series>"
INSTANCE = SERIES + "/instances/<uid:instance>"
dicomweb_patterns = [
    path(DICOMWEB + "studies", dicomweb.search_studies, name="dicomweb_studies"),
    path(DICOMWEB + "series", dicomweb.search_series),
    path(DICOMWEB + "instances", dicomweb.search_instances),
    path(STUDY, dicomweb.retrieve, name="dicomweb_study"),
    path(STUDY + "/metadata", dicomweb.retrieve_metadata),
    path(STUDY + "/series", dicomweb.search_series),
    path(STUDY + "/instances", dicomweb.search_instances),
    path(SERIES, dicomweb.retrieve),
    path(SERIES + "/metadata", dicomweb.retrieve_metadata),
    path(SERIES + "/instances", dicomweb.search_instances),
    path(INSTANCE, dicomweb.retrieve),
    path(INSTANCE + "/metadata", dicomweb.retrieve_metadata),
    path(INSTANCE + "/rendered", dicomweb.retrieve_rendered),
    path(INSTANCE + "/frames/<frames:frames>", dicomweb.retrieve_frames),
    path(INSTANCE + "/frames/<frames:frames>/rendered", dicomweb.retrieve_rendered),
    # OHIF on the bucket (sharing/access/ohif.py): its page at any of its routes.
    path(
        "received/<int:bucket_id>/ohif/app-config.js",
        ohif_views.ohif_config,
        name="ohif_config",
    ),
    path("received/<int:bucket_id>/ohif/", ohif_views.ohif_page, name="ohif"),
    path(
        "received/<int:bucket_id>/ohif/<path:route>",
        ohif_views.ohif_page,
        name="ohif_route",
    ),
]

app_name = "sharing"
urlpatterns = dicomweb_patterns + [
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
