"""Re-queue the outbox rows no worker is taking care of (what Celery beat runs)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from sharing.outbox.relay import notifications_relay


class Command(BaseCommand):
    help = (
        "Re-queue pending notifications older than NOTIFICATION_RELAY_MIN_AGE and "
        "those whose lease has expired. Without REDIS_URL they are sent here."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop",
            action="store_true",
            help="sweep every NOTIFICATION_RELAY_PERIOD seconds until interrupted",
        )

    def handle(self, *args, loop=False, **options):
        while True:
            result = notifications_relay()
            self.stdout.write(
                f"{result.requeued} notifications re-queued, "
                f"{result.refused} refused by the broker"
            )
            if not loop:
                return
            time.sleep(settings.NOTIFICATION_RELAY_PERIOD)
