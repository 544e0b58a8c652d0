from django.urls import path

from . import ohif, pacs_views, viewer_views, views

app_name = "studies"
urlpatterns = [
    path("overview/", views.overview, name="overview"),
    # OHIF's bundles and assets (studies/ohif.py); its page is a bucket's.
    path("ohif/<path:path>", ohif.ohif_asset, name="ohif_asset"),
    # "Search the PACS" (studies/pacs_views.py): the department's DICOMweb source.
    path("overview/pacs/", pacs_views.pacs_search, name="pacs_search"),
    path("overview/pacs/bring-in/", pacs_views.pacs_bring_in, name="pacs_bring_in"),
    path(
        "overview/pacs/imports/<int:import_id>/",
        pacs_views.pacs_import,
        name="pacs_import",
    ),
    path(
        "overview/pacs/imports/<int:import_id>/progress/",
        pacs_views.pacs_import_progress,
        name="pacs_import_progress",
    ),
    # The study page and its viewer (studies/viewer_views.py): series, frames,
    # download, report edit.
    path("studies/<int:study_id>/", viewer_views.study_detail, name="study"),
    path(
        "studies/<int:study_id>/series/<int:series_id>/",
        viewer_views.series_detail,
        name="series",
    ),
    path(
        "studies/<int:study_id>/series/<int:series_id>/thumbnail.png",
        viewer_views.series_thumbnail,
        name="series_thumbnail",
    ),
    path(
        "studies/<int:study_id>/instances/<int:instance_id>/frames/<int:frame>.<str:fmt>",
        viewer_views.frame,
        name="frame",
    ),
    path("studies/<int:study_id>/download.zip", viewer_views.download, name="download"),
    path(
        "studies/<int:study_id>/report/", viewer_views.report_edit, name="report_edit"
    ),
]
