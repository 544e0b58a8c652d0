import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")

app = Celery("pacsshare")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The outbox's task lives in its room of the sharing app, not in sharing/tasks.py.
app.autodiscover_tasks(["sharing.outbox"])
# The relay's periodic task (settings.CELERY_BEAT_SCHEDULE) lives beside it.
app.autodiscover_tasks(["sharing.outbox"], related_name="relay")
# DICOM on the network: "Bring in" from a DICOMweb source, "Send to my PACS".
app.autodiscover_tasks(["studies.dicomnet", "sharing.access"])
