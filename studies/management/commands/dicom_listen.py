import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from studies.dicomnet.receiver import Receiver


class Command(BaseCommand):
    help = (
        "Run the DICOM receiver: C-ECHO and C-STORE from the calling AE titles "
        "the departments list; received files are imported like import_dicom."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.DICOM_RECEIVER_HOST)
        parser.add_argument("--port", type=int, default=settings.DICOM_RECEIVER_PORT)
        parser.add_argument(
            "--ae-title", default=settings.DICOM_RECEIVER_AE_TITLE, metavar="AET"
        )

    def handle(self, *args, host, port, ae_title, **options):
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        receiver = Receiver(ae_title=ae_title, host=host, port=port)
        bound_host, bound_port = receiver.start()
        self.stdout.write(
            f"DICOM receiver {ae_title} listening on {bound_host}:{bound_port}",
        )
        self.stdout.flush()
        try:
            stopping.wait()
        finally:
            self.stdout.write("Stopping the DICOM receiver…")
            receiver.stop()
            self.stdout.write("DICOM receiver stopped.")
