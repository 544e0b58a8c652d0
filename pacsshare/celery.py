import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")

app = Celery("pacsshare")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The outbox's task lives in its room of the sharing app, not in sharing/tasks.py.
app.autodiscover_tasks(["sharing.outbox"])
# The relay's periodic task (settings.CELERY_BEAT_SCHEDULE) lives beside it.
app.autodiscover_tasks(["sharing.outbox"], related_name="relay")


@task_postrun.connect
def close_old_database_connections(sender=None, **kwargs):
    """Keep the worker's database connection by Django's rules, as a request does.

    Celery's own Django fix-up reuses it for CELERY_DB_REUSE_MAX tasks; this drops
    it sooner when it is past CONN_MAX_AGE, broke, or was left in a transaction.
    A task run in-process (no broker) leaves its caller's connection alone.
    """
    from django.db import close_old_connections

    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()
