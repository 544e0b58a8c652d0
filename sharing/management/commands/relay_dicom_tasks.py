"""Re-queue interrupted bring-ins and PACS transfers (what Celery beat runs)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from sharing.access.pacs_relay import pacs_transfers_relay
from studies.dicomnet.relay import dicomweb_imports_relay


class Command(BaseCommand):
    help = (
        "Re-queue the bring-ins and PACS transfers whose lease has expired (their "
        "worker died), failing those interrupted DICOM_TASK_MAX_ATTEMPTS times. "
        "Without REDIS_URL they run here."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop",
            action="store_true",
            help="sweep every DICOM_RELAY_PERIOD seconds until interrupted",
        )

    def handle(self, *args, loop=False, **options):
        while True:
            for name, sweep in (
                ("bring-ins", dicomweb_imports_relay),
                ("PACS transfers", pacs_transfers_relay),
            ):
                result = sweep()
                self.stdout.write(
                    f"{result.requeued} {name} re-queued, {result.given_up} given "
                    f"up, {result.refused} refused by the broker"
                )
            if not loop:
                return
            time.sleep(settings.DICOM_RELAY_PERIOD)
