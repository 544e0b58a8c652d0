"""Celery tasks of DICOM on the network: thin wrappers around the services."""

from celery import shared_task

from .retrieve import dicomweb_import_run

# Publishing waits this little for a broker that refuses: the caller is a request.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}


@shared_task(name="studies.dicomweb_import", acks_late=True, ignore_result=True)
def dicomweb_import(import_id):
    """Bring one study in from the department's DICOMweb source (or resume it)."""
    return dicomweb_import_run(import_id=import_id)
