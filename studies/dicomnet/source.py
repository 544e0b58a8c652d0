"""The department's PACS as a DICOMweb source: search it (QIDO-RS), bring a study in
(WADO-RS), with dicomweb-client.

The credentials go into the HTTP session's basic auth only: never into a URL, a
log line or a message. Errors the clinician sees are `SourceError`s with a
translated sentence; the log gets the source's host and the kind of error,
never the query string (it holds patient names and IDs).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from pathlib import Path
from urllib.parse import urlsplit

import requests
import requests.adapters
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from django.utils.translation import gettext as _
from pydicom.dataset import Dataset

from ..dicom_import import format_person_name, parse_dicom_date
from ..models import DicomWebSource

logger = logging.getLogger(__name__)

STUDY_FIELDS = [
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
]
# Instances are asked for in the transfer syntax the PACS holds them in.
STORED_SYNTAX = (("application/dicom", "*"),)


class SourceError(Exception):
    """The source could not answer; the message is for the clinician."""


@dataclasses.dataclass(frozen=True)
class RemoteStudy:
    """One study as the source's QIDO-RS answer describes it."""

    study_instance_uid: str
    patient_name: str
    patient_id: str
    birth_date: datetime.date | None
    study_date: datetime.date | None
    description: str
    accession_number: str
    modalities: tuple[str, ...]
    series_count: int | None
    instance_count: int | None


@dataclasses.dataclass(frozen=True)
class RemoteInstance:
    series_instance_uid: str
    sop_instance_uid: str


def source_host(source: DicomWebSource) -> str:
    """Return the source's host (and port) as a clinician may read it."""
    parts = urlsplit(source.base_url)
    return parts.hostname + (f":{parts.port}" if parts.port else "")


def source_client(source: DicomWebSource) -> DICOMwebClient:
    """Return a dicomweb-client for the source, its credentials in basic auth."""
    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, _WildcardAdapter())
    if source.username or source.password:
        session.auth = requests.auth.HTTPBasicAuth(source.username, source.password)
    client = DICOMwebClient(
        url=source.base_url.rstrip("/"),
        session=session,
        timeout=(settings.DICOMWEB_CONNECT_TIMEOUT, settings.DICOMWEB_TIMEOUT),
    )
    # A PACS that answers 503 is said to be down at once, not after a minute.
    client.set_http_retry_params(retry=False)
    return client


def _source_error(source: DicomWebSource, exc: Exception, doing: str) -> SourceError:
    """Log what went wrong (host and kind only) and return the clinician's error."""
    host = source_host(source)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        logger.warning("DICOMweb source %s answered HTTP %s to %s", host, status, doing)
        if status in (401, 403):
            return SourceError(
                _(
                    "The PACS (%(host)s) refused PACSshare's credentials. Ask your "
                    "department's administrator to check the DICOMweb source."
                )
                % {"host": host}
            )
        return SourceError(
            _("The PACS (%(host)s) answered with an error (HTTP %(status)s).")
            % {"host": host, "status": status}
        )
    if isinstance(exc, requests.Timeout):
        logger.warning("DICOMweb source %s timed out on %s", host, doing)
        return SourceError(
            _("The PACS (%(host)s) did not answer in time. Try again later.")
            % {"host": host}
        )
    if isinstance(exc, requests.RequestException):
        logger.warning(
            "DICOMweb source %s unreachable on %s (%s)", host, doing, type(exc).__name__
        )
        return SourceError(
            _(
                "The PACS (%(host)s) cannot be reached. Try again later, or ask your "
                "department's administrator to check the DICOMweb source."
            )
            % {"host": host}
        )
    logger.warning(
        "DICOMweb source %s gave an unreadable answer to %s (%s)",
        host,
        doing,
        type(exc).__name__,
    )
    return SourceError(
        _("The PACS (%(host)s) gave an answer PACSshare cannot read.") % {"host": host}
    )


def _date_range(date_from, date_to) -> str:
    start = date_from.strftime("%Y%m%d") if date_from else ""
    end = date_to.strftime("%Y%m%d") if date_to else ""
    if start and start == end:
        return start
    return f"{start}-{end}"


def _name_pattern(name: str) -> str:
    """Return the QIDO-RS pattern of a typed name: its start, any case.

    "peeters jan" → ``peeters*jan*``: the separators (space, comma, the PN
    caret) become ``*``, and any character but an ASCII letter, digit, ``-``,
    ``.`` or ``_`` becomes ``?`` (one character). Percent-escaped values are
    not unescaped by some PACS (Orthanc 1.10's DICOMweb), so the pattern is
    kept to characters that travel as they are.
    """
    parts = []
    for char in name.strip():
        if char.isspace() or char in ",^*":
            if not parts or parts[-1] != "*":
                parts.append("*")
        elif char.isascii() and (char.isalnum() or char in "-._"):
            parts.append(char)
        else:
            parts.append("?")
    if not parts or parts[-1] != "*":
        parts.append("*")
    return "".join(parts)


class _WildcardAdapter(requests.adapters.HTTPAdapter):
    """Send QIDO-RS wildcards (``*``, ``?``) unescaped in the query string.

    Both are legal there (RFC 3986), and a PACS that does not unescape its
    query (Orthanc 1.10's DICOMweb) matches them only so.
    """

    def send(self, request, **kwargs):
        base, sep, query = request.url.partition("?")
        if sep:
            query = query.replace("%2A", "*").replace("%3F", "?")
            request.url = f"{base}?{query}"
        return super().send(request, **kwargs)


def search_filters(
    *, patient_id="", patient_name="", accession_number="", date_from=None, date_to=None
) -> dict[str, str]:
    """Return the QIDO-RS matching keys of a search."""
    filters = {}
    if patient_id:
        filters["PatientID"] = patient_id
    if patient_name:
        filters["PatientName"] = _name_pattern(patient_name)
    if accession_number:
        filters["AccessionNumber"] = accession_number
    if date_from or date_to:
        filters["StudyDate"] = _date_range(date_from, date_to)
    return filters


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _remote_study(item: dict) -> RemoteStudy | None:
    try:
        ds = Dataset.from_json(item)
        uid = str(ds.get("StudyInstanceUID", "") or "").strip()
        if not uid:
            return None
        modalities = ds.get("ModalitiesInStudy") or []
        if isinstance(modalities, str):
            modalities = [modalities]
        return RemoteStudy(
            study_instance_uid=uid,
            patient_name=format_person_name(ds.get("PatientName")),
            patient_id=str(ds.get("PatientID", "") or ""),
            birth_date=parse_dicom_date(ds.get("PatientBirthDate")),
            study_date=parse_dicom_date(ds.get("StudyDate")),
            description=str(ds.get("StudyDescription", "") or ""),
            accession_number=str(ds.get("AccessionNumber", "") or ""),
            modalities=tuple(sorted({str(m) for m in modalities if m})),
            series_count=_int_or_none(ds.get("NumberOfStudyRelatedSeries")),
            instance_count=_int_or_none(ds.get("NumberOfStudyRelatedInstances")),
        )
    except Exception:  # noqa: BLE001 - one malformed answer item is left out
        logger.warning("DICOMweb source: a study in the answer could not be read")
        return None


def source_search(
    *, source: DicomWebSource, limit: int | None = None, **criteria
) -> tuple[list[RemoteStudy], bool]:
    """Search the source's studies; return (studies, whether there were more).

    ``criteria``: patient_id, patient_name, accession_number, date_from,
    date_to (see ``search_filters``). Raises SourceError.
    """
    limit = limit or settings.DICOMWEB_SEARCH_LIMIT
    client = source_client(source)
    try:
        answer = client.search_for_studies(
            search_filters=search_filters(**criteria),
            fields=STUDY_FIELDS,
            limit=limit + 1,
        )
    except Exception as exc:  # noqa: BLE001 - every failure is said the same way
        raise _source_error(source, exc, "a study search") from None
    studies = [s for s in map(_remote_study, answer or []) if s is not None]
    studies.sort(key=lambda s: s.study_date or datetime.date.min, reverse=True)
    return studies[:limit], len(studies) > limit


def source_study(*, client, source, study_instance_uid) -> RemoteStudy | None:
    """Return what the source says of one study, or None if it has no such study."""
    try:
        answer = client.search_for_studies(
            search_filters={"StudyInstanceUID": study_instance_uid},
            fields=STUDY_FIELDS,
            limit=2,
        )
    except Exception as exc:  # noqa: BLE001
        raise _source_error(source, exc, "a study look-up") from None
    for study in map(_remote_study, answer or []):
        if study is not None and study.study_instance_uid == study_instance_uid:
            return study
    return None


def source_study_instances(
    *, client, source, study_instance_uid
) -> list[RemoteInstance]:
    """List the instances of a study on the source (QIDO-RS), series by series."""
    try:
        answer = client.search_for_instances(
            study_instance_uid=study_instance_uid,
            fields=["SeriesInstanceUID", "SOPInstanceUID"],
            get_remaining=True,
        )
    except Exception as exc:  # noqa: BLE001
        raise _source_error(source, exc, "an instance list") from None
    instances, seen = [], set()
    for item in answer or []:
        try:
            ds = Dataset.from_json(item)
            series_uid = str(ds.SeriesInstanceUID)
            sop_uid = str(ds.SOPInstanceUID)
        except Exception:  # noqa: BLE001, S112 - an unreadable item is skipped
            continue
        if sop_uid not in seen:
            seen.add(sop_uid)
            instances.append(RemoteInstance(series_uid, sop_uid))
    instances.sort(key=lambda i: i.series_instance_uid)
    return instances


def source_retrieve_instance(
    *, client, source, study_instance_uid, instance: RemoteInstance, path: Path
) -> None:
    """Retrieve one instance (WADO-RS, as stored) into the file ``path``.

    One instance is held in memory at a time; raises SourceError.
    """
    try:
        ds = client.retrieve_instance(
            study_instance_uid,
            instance.series_instance_uid,
            instance.sop_instance_uid,
            media_types=STORED_SYNTAX,
        )
    except Exception as exc:  # noqa: BLE001
        raise _source_error(source, exc, "an instance retrieve") from None
    try:
        ds.save_as(path, enforce_file_format=True)
    except Exception as exc:  # noqa: BLE001
        raise _source_error(source, exc, "an instance retrieve") from None
