"""The DICOM receiver: C-ECHO and C-STORE from the AE titles departments list.

One pynetdicom AE serves every association in its own thread. At association
request (EVT_REQUESTED) the calling AE title and the peer's address are looked
up among the departments' `DicomCaller` rows; an unknown caller is rejected
(A-ASSOCIATE-RJ, "calling AE title not recognised"). Each received data set is
written by pynetdicom to a temporary Part 10 file as it arrives (file meta with
the negotiated transfer syntax; `_config.STORE_RECV_CHUNKED_DATASET`), so no
data set, let alone a study, is held whole in memory. That file goes through
the same import as `manage.py import_dicom` (`DepartmentImport.import_one`),
one `DepartmentImport` per association, and the C-STORE is answered with what
happened:

- 0x0000 Success: stored, or already present (same SOP Instance UID). A
  repeated store is answered as a success on purpose: the instance is there,
  and a sender that retries after a lost response must not see a failure
  (PS3.4 has no warning for "duplicate"; Orthanc answers the same way).
- 0xC000 Error, cannot understand: the import refused the file (hostile,
  malformed UID, another department's study, another patient under a known
  study); the reason is in the Error Comment and in the association's record.
- 0xA700 Refused, out of resources: the file could not be stored for a passing
  cause (disk, database); the sender may try again.

Every association is recorded as an `IncomingAssociation`, rejected ones too.
All its database work runs in the association's own thread, whose connections
are closed when the association ends.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, _config, _handlers, evt
from pynetdicom.sop_class import Verification

from studies.dicom_import import DepartmentImport, FileOutcome, Outcome
from studies.models import IncomingAssociation

from . import fast_paths
from .callers import caller_for
from .waiting import make_waiting

logger = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent)
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 and 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless (Process 14, Selection Value 1)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
]
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
# A-ASSOCIATE-RJ: rejected permanent, by the service user, calling AE title
# not recognised (PS3.8 9.3.4).
REJECT_UNKNOWN_CALLER = (0x01, 0x01, 0x03)
# Rejected transient, by the service provider, temporary congestion.
REJECT_FOR_NOW = (0x02, 0x03, 0x01)
ERROR_COMMENT_LENGTH = 64  # LO
MAX_REASONS = 200
# The association's record is brought up to date this often while it runs.
FLUSH_EVERY_FILES = 100
FLUSH_EVERY_SECONDS = 10.0
# The largest P-DATA PDU a sender may send us: fewer, larger PDUs are faster.
MAX_PDU = 1024 * 1024
FINISH_ATTEMPTS = 5
# pynetdicom's DUL thread sleeps this long (default 1 ms) whenever a loop
# found nothing to do, also between our answer being queued and its being sent
# (only where waiting.py leaves an association polling: TLS).
DUL_IDLE_SLEEP = 0.0002
STANDARD_LOG_HANDLERS = [
    (evt.EVT_DIMSE_RECV, _handlers.standard_dimse_recv_handler),
    (evt.EVT_DIMSE_SENT, _handlers.standard_dimse_sent_handler),
    (evt.EVT_PDU_RECV, _handlers.standard_pdu_recv_handler),
    (evt.EVT_PDU_SENT, _handlers.standard_pdu_sent_handler),
]


@dataclass
class _Session:
    """What one accepted association has done so far."""

    record: IncomingAssociation
    importer: DepartmentImport
    stored: int = 0
    already_present: int = 0
    refused: int = 0
    reasons: list = field(default_factory=list)
    unsaved: int = 0
    saved_at: float = field(default_factory=time.monotonic)

    def count(self, outcome: FileOutcome, sop_instance_uid: str) -> None:
        if outcome.outcome is Outcome.IMPORTED:
            self.stored += 1
        elif outcome.outcome is Outcome.PRESENT:
            self.already_present += 1
        else:
            self.refused += 1
            if len(self.reasons) < MAX_REASONS:
                self.reasons.append(
                    {"sop_instance_uid": sop_instance_uid, "reason": outcome.reason}
                )
        self.unsaved += 1

    def save(self, *, ended: bool = False) -> None:
        # The studies' instance counts first: a record that says "ended"
        # comes with studies whose counts are up to date.
        self.importer.flush_counts()
        record = self.record
        record.stored = self.stored
        record.already_present = self.already_present
        record.refused = self.refused
        record.reasons = self.reasons
        fields = ["stored", "already_present", "refused", "reasons", "accepted"]
        if ended:
            record.ended_at = timezone.now()
            fields.append("ended_at")
        record.save(update_fields=fields)
        self.unsaved = 0
        self.saved_at = time.monotonic()

    def due(self) -> bool:
        return self.unsaved >= FLUSH_EVERY_FILES or (
            self.unsaved and time.monotonic() - self.saved_at > FLUSH_EVERY_SECONDS
        )


def store_status(outcome: FileOutcome) -> Dataset:
    """Return the C-STORE response status that says what happened to a file."""
    status = Dataset()
    if outcome.outcome in (Outcome.IMPORTED, Outcome.PRESENT):
        status.Status = SUCCESS
        return status
    status.Status = OUT_OF_RESOURCES if outcome.retryable else CANNOT_UNDERSTAND
    status.ErrorComment = outcome.reason[:ERROR_COMMENT_LENGTH].rstrip()
    return status


class Receiver:
    """A DICOM Storage SCP for the departments' listed callers.

    `start()` listens in background threads and returns the bound address;
    `stop()` stops accepting, lets running associations end for a while, then
    aborts what is left.
    """

    def __init__(self, *, ae_title: str, host: str, port: int):
        self.ae_title = ae_title
        self.address = (host, port)
        self._sessions: dict[object, _Session] = {}
        self._lock = threading.Lock()
        self._server = None
        # Data sets go to a temporary file as they arrive, not into memory.
        _config.STORE_RECV_CHUNKED_DATASET = True
        fast_paths.install()
        self.ae = AE(ae_title=ae_title)
        self.ae.maximum_pdu_size = MAX_PDU
        self.ae.maximum_associations = 20
        self.ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            self.ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)

    def start(self) -> tuple[str, int]:
        handlers = [
            (evt.EVT_CONN_OPEN, self._on_connection),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        self._server = self.ae.start_server(
            self.address, block=False, evt_handlers=handlers
        )
        host, port = self._server.server_address[:2]
        logger.info("DICOM receiver %s listening on %s:%s", self.ae_title, host, port)
        return host, port

    def stop(self, *, grace: float = 30.0) -> None:
        """Stop accepting; wait up to `grace` seconds for associations to end."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        deadline = time.monotonic() + grace
        while self.ae.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        for assoc in self.ae.active_associations:
            assoc.abort()
        for assoc in self.ae.active_associations:
            assoc.join(5)
        self.ae.shutdown()

    # -- event handlers ----------------------------------------------------

    def _on_connection(self, event) -> None:
        """Run the association's thread so that it ends by closing its records.

        EVT_CONN_OPEN comes before the association's thread starts; its `run`
        is wrapped so that, however the association ends (released, aborted,
        timed out, rejected), its record is completed and the thread's
        database connections are closed in that same thread.
        """
        assoc = event.assoc
        # Answers are small PDUs sent while the peer waits for them: without
        # TCP_NODELAY, Nagle's algorithm and delayed ACKs hold each for ~40 ms.
        raw = getattr(assoc.dul.socket, "socket", None)
        if raw is not None:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # At pynetdicom's 1 ms, waiting for the next loop is a good part of a
        # small file's round trip (answer sent, next request read); shorter
        # costs a little CPU only while the association is open.
        assoc.dul._run_loop_delay = DUL_IDLE_SLEEP
        # Both threads wait for work rather than poll (waiting.py); the
        # response and the file's meta group skip pydicom (fast_paths.py).
        release_waiting = make_waiting(assoc)
        fast_paths.send_store_response(assoc)
        if not logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
            # pynetdicom's standard handlers describe every PDU and message
            # for its INFO and DEBUG log: work for nothing when those are off.
            for event_type, handler in STANDARD_LOG_HANDLERS:
                assoc.unbind(event_type, handler)
        run = assoc.run

        def run_and_close():
            try:
                run()
            finally:
                try:
                    self._finish(assoc)
                finally:
                    connections.close_all()
                    if release_waiting is not None:
                        release_waiting()

        assoc.run = run_and_close

    def _on_requested(self, event) -> None:
        assoc = event.assoc
        close_old_connections()
        calling = assoc.requestor.primitive.calling_ae_title.strip()
        called = assoc.requestor.primitive.called_ae_title.strip()
        host = assoc.requestor.address
        try:
            caller = caller_for(ae_title=calling, address=host)
            record = IncomingAssociation.objects.create(
                department=caller.department if caller else None,
                calling_ae_title=calling[:16],
                called_ae_title=called[:16],
                host=host[:255],
                accepted=caller is not None,
            )
        except DatabaseError:
            # Nothing can be stored now: say so (transient, "temporary
            # congestion") rather than accept and refuse every file.
            logger.exception("DICOM association from %s refused", calling)
            assoc.acse.send_reject(*REJECT_FOR_NOW)
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()
            return
        if caller is None:
            logger.warning("Rejected unknown DICOM caller %s from %s", calling, host)
            record.ended_at = timezone.now()
            record.save(update_fields=["ended_at"])
            assoc.acse.send_reject(*REJECT_UNKNOWN_CALLER)
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()
            return
        with self._lock:
            self._sessions[assoc] = _Session(
                record=record,
                importer=DepartmentImport(caller.department, receiving=True),
            )

    def _on_echo(self, event) -> int:
        return SUCCESS

    def _on_store(self, event) -> Dataset:
        session = self._sessions.get(event.assoc)
        uid = str(event.request.AffectedSOPInstanceUID or "")
        if session is None:  # not possible once accepted; refuse rather than guess
            return store_status(
                FileOutcome(Path(), Outcome.SKIPPED, "association not accepted")
            )
        try:
            outcome = session.importer.import_one(
                Path(event.dataset_path), announced_uid=uid
            )
        except Exception:
            logger.exception("C-STORE of %s failed", uid)
            outcome = FileOutcome(
                Path(), Outcome.SKIPPED, "receiver error", retryable=True
            )
        if outcome.retryable:
            # A connection the database dropped is replaced for the next file
            # (checked only then: a health check per file costs 10%).
            close_old_connections()
        session.count(outcome, uid)
        if session.due():
            session.save()
        return store_status(outcome)

    def _finish(self, assoc) -> None:
        with self._lock:
            session = self._sessions.pop(assoc, None)
        if session is None:
            return
        if assoc.is_rejected:
            # Accepted by us, then refused by pynetdicom (too many associations).
            session.record.accepted = False
        for attempt in range(FINISH_ATTEMPTS):
            try:
                session.save(ended=True)
                return
            except DatabaseError:
                # A passing outage (or SQLite's table lock) must not leave
                # the record open for ever.
                logger.warning("Could not close association %s", session.record.pk)
                connections.close_all()
                time.sleep(0.2 * (attempt + 1))
