"""The "Send to my PACS" task: a thin wrapper around sharing.access.pacs."""

from celery import shared_task

from .pacs_send import pacs_transfer_run


@shared_task(name="sharing.send_to_pacs", acks_late=True, ignore_result=True)
def send_to_pacs(transfer_id):
    """Send one PacsTransfer's bucket to its DICOM destination (or resume it)."""
    return pacs_transfer_run(transfer_id=transfer_id)
