"""Send a PacsTransfer's bucket to its destination: the task's side of Send to my
PACS (the request's side is pacs.py).

What travels is what the bucket's download holds, study by study: every
instance, and the sender's message as a Basic Text SR; for an anonymized
bucket de-identified with the bucket's own salt and pseudonym, exactly as its
download (sharing/access/viewer.py), the instances that cannot be cleaned left
out. One data set is in memory at a time.

The transfer is claimed under a lease (studies/dicomnet/leases.py) renewed with
every object's count. A claim after an interrupted one resumes after the objects
already counted (the list is built in the same order); the object in flight when
the worker died may go twice, which a PACS takes as the same SOP Instance UID.
"""

from __future__ import annotations

import logging

import pydicom
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from studies.deidentify import Deidentifier, deidentification_salt
from studies.dicomnet.leases import Lease, LeaseLost, claim
from studies.dicomnet.store_scu import DestinationUnreachable, StoreItem, store_send
from studies.message_sr import message_sr_build
from studies.models import Instance
from studies.rendering import dataset_read

from ..audit.record import audit_record
from ..models import AuditEvent, Bucket, PacsTransfer, Pseudonym
from .guard import refusal_of

logger = logging.getLogger(__name__)

ERROR_MAX = PacsTransfer._meta.get_field("error").max_length


def _instances_sent(study, *, anonymized):
    """Return the study's instances as its download holds them (same order)."""
    instances = (
        Instance.objects.filter(series__study=study)
        .select_related("series")
        .order_by("series__series_number", "series_id", "instance_number", "id")
    )
    if anonymized:
        return [i for i in instances if i.is_cleanable]
    return list(instances)


def _file_syntax(instance) -> tuple[str, str]:
    """Return (SOP class, transfer syntax) of a stored file, reading its header."""
    with instance.file.open("rb") as handle:
        ds = pydicom.dcmread(
            handle, stop_before_pixels=True, specific_tags=["SOPClassUID"], force=True
        )
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if not syntax:
        syntax = (
            pydicom.uid.ImplicitVRLittleEndian
            if ds.original_encoding[0]
            else pydicom.uid.ExplicitVRLittleEndian
        )
    sop_class = str(ds.get("SOPClassUID", "") or instance.sop_class_uid)
    return sop_class or instance.sop_class_uid, syntax


def _loader(instance, deidentifier):
    def load():
        with instance.file.open("rb") as handle:
            raw = handle.read()
        ds = dataset_read(raw)
        if deidentifier is not None:
            deidentifier.apply(ds)
        return ds

    return load


def _items(bucket: Bucket):
    """Yield the StoreItems of a bucket: each study's instances, then its message."""
    share = bucket.share
    anonymized = share.anonymize
    salt = deidentification_salt(f"bucket:{bucket.pk}") if anonymized else None
    for study in share.studies.select_related("patient").order_by("pk"):
        pseudonym = (
            Pseudonym.objects.for_patient(bucket=bucket, patient=study.patient)
            if anonymized
            else None
        )
        deidentifier = (
            Deidentifier(salt=salt, pseudonym=pseudonym) if anonymized else None
        )
        for instance in _instances_sent(study, anonymized=anonymized):
            try:
                sop_class, syntax = _file_syntax(instance)
            except Exception:  # noqa: BLE001 - an unreadable file fails alone
                sop_class, syntax = instance.sop_class_uid, ""
            yield StoreItem(
                sop_class_uid=sop_class,
                transfer_syntax_uid=syntax or pydicom.uid.ExplicitVRLittleEndian,
                load=_loader(instance, deidentifier),
                key=instance.pk,
            )
        if share.message:
            message = message_sr_build(
                study=study,
                text=share.message,
                sender=share.sender,
                sent_at=share.created_at,
                pseudonym=pseudonym,
                uid_seed=share.pk,
            )
            if deidentifier is not None:
                deidentifier.remap_uids(message)
            yield StoreItem(
                sop_class_uid=str(message.SOPClassUID),
                transfer_syntax_uid=str(message.file_meta.TransferSyntaxUID),
                load=lambda message=message: message,
                key="message",
            )


def pacs_transfer_run(*, transfer_id: int) -> str:
    """Send a transfer's bucket to its destination; return the final status.

    Run by the task. A transfer someone holds (a task delivered twice, a worker
    still at it) is left alone; one whose worker died is resumed. Nothing is
    retried otherwise, so a PACS that is down gets one connection attempt per
    click. Counts are kept as each object is answered; the outcome is audited
    with the destination and the counts.
    """
    lease = claim(PacsTransfer, transfer_id)
    if lease is None:
        return "skipped"
    transfer = PacsTransfer.objects.select_related(
        "bucket__share__sender", "bucket__share__source_department", "user"
    ).get(pk=transfer_id)
    language = getattr(transfer.user, "language", None) or translation.get_language()
    with translation.override(language):
        try:
            return _run(transfer, lease)
        except LeaseLost:
            logger.warning("PACS transfer %s: claimed again elsewhere", transfer_id)
            return "lost"


def _build(bucket: Bucket, lease: Lease) -> list:
    items = []
    for item in _items(bucket):
        items.append(item)
        lease.keep()
    return items


def _run(transfer: PacsTransfer, lease: Lease) -> str:
    bucket = transfer.bucket
    error = ""
    reasons: list[str] = []
    items = []
    if refusal_of(bucket) is not None:
        # Revoked, expired or locked since the click (or the interruption):
        # nothing (more) leaves.
        error = _("Access to this share ended before the transfer started.")
    try:
        items = [] if error else _build(bucket, lease)
    except LeaseLost:
        raise
    except Exception:  # noqa: BLE001 - the page must say something, not hang
        logger.exception("PACS transfer %s: the bucket could not be read", transfer.pk)
        items, error = [], _("PACSshare could not read the studies of this share.")
    done = transfer.sent + transfer.failed
    if lease.attempt > 1 and done and len(items) == transfer.total:
        # Resumed: what the claim before counted is not sent again.
        to_send = items[done:]
        if transfer.failed:
            reasons.append(_("some items failed before the transfer was interrupted"))
    else:
        # A first claim, or the bucket changed since: everything (again).
        to_send = items
        lease.hold(total=len(items), sent=0, failed=0)

    def on_result(item, ok, reason):
        field = "sent" if ok else "failed"
        lease.hold(**{field: models.F(field) + 1})
        if not ok and reason not in reasons:
            reasons.append(reason)

    if to_send and not error:
        try:
            store_send(
                ae_title=transfer.ae_title,
                host=transfer.host,
                port=transfer.port,
                items=to_send,
                on_result=on_result,
            )
        except DestinationUnreachable as exc:
            error = str(exc)
            lease.hold(failed=models.F("total") - models.F("sent"))
        except LeaseLost:
            raise
        except Exception:  # noqa: BLE001
            logger.exception("PACS transfer %s failed", transfer.pk)
            error = _("The transfer stopped on an unexpected error.")
    elif not items and not error:
        error = _("This share holds no image that can be sent.")
    transfer.refresh_from_db()
    if error:
        status = PacsTransfer.Status.FAILED
    elif transfer.failed == 0:
        status = PacsTransfer.Status.DONE
    elif transfer.sent:
        status = PacsTransfer.Status.PARTIAL
    else:
        status = PacsTransfer.Status.FAILED
    if not error and reasons:
        error = "; ".join(reasons)
    lease.release(status=status, error=error[:ERROR_MAX], finished_at=timezone.now())
    transfer.refresh_from_db()
    audit_record(
        action=AuditEvent.Action.SENT_TO_PACS,
        actor=transfer.user,
        bucket=bucket,
        studies=list(bucket.share.studies.all()),
        details={
            "destination": f"{transfer.ae_title}@{transfer.host}:{transfer.port}",
            "status": status,
            "total": transfer.total,
            "sent": transfer.sent,
            "failed": transfer.failed,
            "anonymized": bucket.share.anonymize,
        },
    )
    return status
