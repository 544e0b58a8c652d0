"""C-STORE SCU: send data sets to a DICOM destination (pynetdicom).

The caller gives each object's SOP class and transfer syntax up front (the
stored file's own: nothing is transcoded) and a function that loads it when
its turn comes, so one data set is in memory at a time. One association
carries everything; its presentation contexts propose, per SOP class, each
stored transfer syntax, and for uncompressed files the two little-endian ones
besides. Every object ends with one call of ``on_result(item, ok, reason)``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.utils.translation import gettext as _
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE

logger = logging.getLogger(__name__)

CALLING_AE_TITLE = "PACSSHARE"
# PS3.8: an association holds at most 128 presentation contexts.
MAX_CONTEXTS = 128
NATIVE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
UNCOMPRESSED = {
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
}
# Success, and the warnings that still mean "stored" (coercion, elements
# discarded, data set does not match the SOP class).
STORED_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}


@dataclasses.dataclass
class StoreItem:
    """One object to send: what it is, and how to load it when its turn comes."""

    sop_class_uid: str
    transfer_syntax_uid: str
    load: Callable[[], object]  # returns a pydicom Dataset; may raise
    key: object = None  # the caller's own handle, handed back in on_result


class DestinationUnreachable(Exception):
    """No association could be made; the message says why, for the user."""


def _contexts(items: list[StoreItem]) -> list[tuple[str, list[str]]]:
    """Return (SOP class, transfer syntaxes) pairs: one per class for
    uncompressed files, one per class and compressed syntax."""
    native: dict[str, list[str]] = {}
    compressed: dict[tuple[str, str], None] = {}
    for item in items:
        if item.transfer_syntax_uid in UNCOMPRESSED:
            syntaxes = native.setdefault(item.sop_class_uid, [])
            for uid in (item.transfer_syntax_uid, *NATIVE):
                if uid not in syntaxes:
                    syntaxes.append(uid)
        else:
            compressed[(item.sop_class_uid, item.transfer_syntax_uid)] = None
    contexts = list(native.items())
    contexts += [(sop, [syntax]) for sop, syntax in compressed]
    return contexts


def _status_reason(status) -> str:
    return _("the PACS refused it (DICOM status 0x%(status)04X)") % {"status": status}


def store_send(
    *,
    ae_title: str,
    host: str,
    port: int,
    items: Iterable[StoreItem],
    on_result: Callable[[StoreItem, bool, str], None],
    calling_ae_title: str = CALLING_AE_TITLE,
) -> None:
    """Send every item over one association; report each with ``on_result``.

    Raises DestinationUnreachable (nothing was sent) when the destination
    cannot be reached or rejects the association. If the association is lost
    midway, every item left is reported failed with the reason.
    """
    items = list(items)
    contexts = _contexts(items)
    if len(contexts) > MAX_CONTEXTS:
        kept = {sop for sop, _syntaxes in contexts[:MAX_CONTEXTS]}
        contexts = contexts[:MAX_CONTEXTS]
        logger.warning("C-STORE: more than %s presentation contexts", MAX_CONTEXTS)
    else:
        kept = None
    ae = AE(ae_title=calling_ae_title)
    ae.connection_timeout = settings.DICOM_STORE_CONNECT_TIMEOUT
    ae.acse_timeout = settings.DICOM_STORE_TIMEOUT
    ae.dimse_timeout = settings.DICOM_STORE_TIMEOUT
    ae.network_timeout = settings.DICOM_STORE_TIMEOUT
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    where = {"ae_title": ae_title, "host": host, "port": port}
    try:
        assoc = ae.associate(host, port, ae_title=ae_title)
    except Exception:  # noqa: BLE001 - a bad host name, a refused socket
        logger.warning("C-STORE: cannot reach %s:%s", host, port, exc_info=True)
        assoc = None
    if assoc is None or not assoc.is_established:
        if assoc is not None and assoc.is_rejected:
            reason = _(
                "The PACS %(ae_title)s at %(host)s:%(port)s refused the connection "
                "(check its AE title and that it accepts PACSshare)."
            )
        else:
            reason = _(
                "The PACS %(ae_title)s at %(host)s:%(port)s cannot be reached "
                "(it may be down, or its address is wrong)."
            )
        logger.warning("C-STORE: no association with %s@%s:%s", ae_title, host, port)
        raise DestinationUnreachable(reason % where)
    lost = ""
    try:
        for item in items:
            if lost:
                on_result(item, False, lost)
                continue
            if kept is not None and item.sop_class_uid not in kept:
                on_result(item, False, _("too many kinds of image for one transfer"))
                continue
            try:
                dataset = item.load()
            except Exception:  # noqa: BLE001 - a file that cannot be read fails alone
                logger.warning("C-STORE: an object could not be loaded", exc_info=True)
                on_result(item, False, _("the stored file could not be read"))
                continue
            try:
                status = assoc.send_c_store(dataset)
            except ValueError:
                # No accepted presentation context fits this object.
                on_result(
                    item, False, _("the PACS accepts no transfer syntax for this image")
                )
                continue
            except Exception:  # noqa: BLE001
                logger.warning("C-STORE: sending failed", exc_info=True)
                status = None
            if not assoc.is_established:
                lost = _(
                    "the connection to the PACS was lost before this image was sent"
                )
            code = getattr(status, "Status", None) if status else None
            if code is None:
                on_result(item, False, lost or _("the PACS did not answer"))
            elif code in STORED_STATUSES:
                on_result(item, True, "")
            else:
                on_result(item, False, _status_reason(code))
    finally:
        if assoc.is_established:
            assoc.release()
