import os
import time

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")

app = Celery("pacsshare")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The outbox's task lives in its room of the sharing app, not in sharing/tasks.py.
app.autodiscover_tasks(["sharing.outbox"])
# The relay's periodic task (settings.CELERY_BEAT_SCHEDULE) lives beside it.
app.autodiscover_tasks(["sharing.outbox"], related_name="relay")
# DICOM on the network: "Bring in" from a DICOMweb source, "Send to my PACS".
app.autodiscover_tasks(["studies.dicomnet", "sharing.access"])
# Their relays, which re-queue interrupted bring-ins and transfers.
app.autodiscover_tasks(["studies.dicomnet"], related_name="relay")
app.autodiscover_tasks(["sharing.access"], related_name="pacs_relay")


@task_postrun.connect
def close_spoiled_database_connections(sender=None, **kwargs):
    """Drop the worker's database connection after a task only when it is spoiled.

    Celery's Django fix-up keeps it for CELERY_DB_REUSE_MAX tasks; this closes it
    sooner when it is past CONN_MAX_AGE, had an error or was left in a
    transaction, as Django does after a request. Unlike Django it does not re-arm
    the health check (a SELECT 1 before every task, a round trip per mail): the
    outbox's statements reconnect and run again on a dropped connection, and any
    other task that meets one closes it here. A task run in-process (no broker)
    leaves its caller's connection alone.
    """
    from django.db import connections

    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if (
            connection.errors_occurred
            or connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]
            or (
                connection.close_at is not None
                and time.monotonic() >= connection.close_at
            )
        ):
            connection.close()
