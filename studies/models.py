from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pacsshare.secret_box import SealedCharField
from recipients.models import Department

from .deidentify import instance_is_cleanable


class Patient(models.Model):
    """A patient as the source department's DICOM headers name them."""

    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="patients"
    )
    patient_id = models.CharField(_("patient ID"), max_length=64)
    family_name = models.CharField(_("last name"), max_length=100, blank=True)
    given_name = models.CharField(_("first name"), max_length=100, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=1, blank=True)

    class Meta:
        ordering = ["family_name", "given_name"]
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints = [
            models.UniqueConstraint(
                fields=["department", "patient_id"],
                name="patient_unique_per_department",
            )
        ]

    def __str__(self):
        return self.full_name or self.patient_id

    @property
    def full_name(self):
        return " ".join(p for p in (self.given_name, self.family_name) if p)

    @property
    def initials(self):
        return "".join(f"{p[0]}." for p in (self.given_name, self.family_name) if p)


class Study(models.Model):
    """One imaging exam; it belongs to the department that produced it."""

    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="studies"
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="studies"
    )
    study_instance_uid = models.CharField(
        _("study instance UID"), max_length=64, unique=True
    )
    accession_number = models.CharField(
        _("accession number"), max_length=16, blank=True
    )
    study_date = models.DateField(_("study date"), null=True, blank=True)
    study_time = models.TimeField(_("study time"), null=True, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # Distinct modalities of the study's series, comma-separated ("CT,MR").
    modalities = models.CharField(_("modalities"), max_length=64, blank=True)
    referring_physician = models.CharField(
        _("referring physician"), max_length=200, blank=True
    )
    institution_name = models.CharField(_("institution"), max_length=200, blank=True)
    # Kept by the import so the overview needs no per-row counting.
    series_count = models.PositiveIntegerField(_("series"), default=0)
    instance_count = models.PositiveIntegerField(_("images"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-study_date", "-study_time", "-id"]
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        # The overview's order (newest first, undated last) has its index in
        # migration 0002: PostgreSQL needs NULLS LAST spelled out, SQLite refuses it.

    def __str__(self):
        return f"{self.description or _('Study')} ({self.study_date or '?'})"

    def get_absolute_url(self):
        return reverse("studies:study", args=[self.pk])


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(
        _("series instance UID"), max_length=64, unique=True
    )
    modality = models.CharField(_("modality"), max_length=16, blank=True)
    series_number = models.IntegerField(_("series number"), null=True, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)

    class Meta:
        ordering = ["series_number", "id"]
        verbose_name = _("series")
        verbose_name_plural = _("series")

    def __str__(self):
        return self.description or f"{self.modality} {self.series_number or ''}".strip()


def instance_upload_to(instance, filename):
    return f"dicom/{instance.sop_instance_uid}.dcm"


class Instance(models.Model):
    """One DICOM file (image, possibly multi-frame, or other object)."""

    series = models.ForeignKey(
        Series, on_delete=models.CASCADE, related_name="instances"
    )
    sop_instance_uid = models.CharField(
        _("SOP instance UID"), max_length=64, unique=True
    )
    sop_class_uid = models.CharField(_("SOP class UID"), max_length=64, blank=True)
    instance_number = models.IntegerField(_("instance number"), null=True, blank=True)
    number_of_frames = models.PositiveIntegerField(_("frames"), default=1)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    has_pixels = models.BooleanField(default=False)
    # The header's Burned In Annotation (YES, NO or "" when absent): an
    # anonymized share leaves out what may carry text in its pixels.
    burned_in_annotation = models.CharField(
        _("burned-in annotation"), max_length=3, blank=True
    )
    file = models.FileField(_("file"), upload_to=instance_upload_to, max_length=255)

    class Meta:
        ordering = ["instance_number", "id"]
        verbose_name = _("instance")
        verbose_name_plural = _("instances")

    def __str__(self):
        return self.sop_instance_uid

    @property
    def is_cleanable(self):
        """Say whether the instance may travel in an anonymized share."""
        return instance_is_cleanable(
            sop_class_uid=self.sop_class_uid,
            modality=self.series.modality,
            burned_in_annotation=self.burned_in_annotation,
        )

    @property
    def frame_count(self):
        """Return the number of frames; a file that says none has one."""
        return max(self.number_of_frames or 1, 1)


class Report(models.Model):
    """The radiology report of a study; every change is kept as a revision."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="report")
    text = models.TextField(_("text"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")

    def __str__(self):
        return f"Report of {self.study}"


class ReportRevision(models.Model):
    report = models.ForeignKey(
        Report, on_delete=models.CASCADE, related_name="revisions"
    )
    text = models.TextField(_("text"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("report revision")
        verbose_name_plural = _("report revisions")

    def __str__(self):
        return f"{self.report} @ {self.created_at:%Y-%m-%d %H:%M}"


# --- DICOM on the network (studies/dicomnet/) --------------------------------


class DicomCaller(models.Model):
    """A calling AE title (optionally bound to a host) a department accepts.

    The receiver files what such a caller stores under its department; a caller
    that no department lists is rejected at association.
    """

    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, related_name="dicom_callers"
    )
    ae_title = models.CharField(_("calling AE title"), max_length=16)
    host = models.CharField(
        _("host"),
        max_length=255,
        blank=True,
        help_text=_("Empty: any host."),
    )

    class Meta:
        ordering = ["ae_title", "host"]
        verbose_name = _("DICOM caller")
        verbose_name_plural = _("DICOM callers")
        constraints = [
            models.UniqueConstraint(
                fields=["ae_title", "host"], name="dicom_caller_unique"
            )
        ]

    def __str__(self):
        return f"{self.ae_title}@{self.host}" if self.host else self.ae_title


class DicomWebSource(models.Model):
    """The department's PACS as a DICOMweb (QIDO-RS/WADO-RS) source."""

    department = models.OneToOneField(
        Department, on_delete=models.CASCADE, related_name="dicomweb_source"
    )
    base_url = models.URLField(_("DICOMweb base URL"), max_length=500)
    username = models.CharField(_("user name"), max_length=150, blank=True)
    # Needed in clear to call the source: sealed at rest (pacsshare.secret_box),
    # never logged, never shown back.
    password = SealedCharField(_("password"), max_length=1000, blank=True)

    class Meta:
        verbose_name = _("DICOMweb source")
        verbose_name_plural = _("DICOMweb sources")

    def __str__(self):
        return self.base_url


class DicomDestination(models.Model):
    """Where a recipient department's members send a share ("Send to my PACS")."""

    department = models.OneToOneField(
        Department, on_delete=models.CASCADE, related_name="dicom_destination"
    )
    ae_title = models.CharField(_("AE title"), max_length=16)
    host = models.CharField(_("host"), max_length=255)
    port = models.PositiveIntegerField(_("port"))

    class Meta:
        verbose_name = _("DICOM destination")
        verbose_name_plural = _("DICOM destinations")

    def __str__(self):
        return f"{self.ae_title}@{self.host}:{self.port}"


class IncomingAssociation(models.Model):
    """One association the receiver accepted or rejected, with what it stored."""

    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incoming_associations",
    )
    calling_ae_title = models.CharField(_("calling AE title"), max_length=16)
    called_ae_title = models.CharField(_("called AE title"), max_length=16)
    host = models.CharField(_("host"), max_length=255)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    accepted = models.BooleanField(_("accepted"), default=True)
    stored = models.PositiveIntegerField(_("stored"), default=0)
    already_present = models.PositiveIntegerField(_("already present"), default=0)
    refused = models.PositiveIntegerField(_("refused"), default=0)
    # One short line per refused file: {"sop_instance_uid": ..., "reason": ...}.
    reasons = models.JSONField(_("reasons"), default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("incoming association")
        verbose_name_plural = _("incoming associations")

    def __str__(self):
        return f"{self.calling_ae_title} {self.started_at:%Y-%m-%d %H:%M}"


class LeasedTask(models.Model):
    """A row a Celery task works on, leased as the outbox's are
    (studies/dicomnet/leases.py): the broker holds a pending row, its worker a
    running one, until `leased_until`; past it nobody does, and the relay takes
    it up. `attempts` counts the claims: each claim's token, bounded by
    DICOM_TASK_MAX_ATTEMPTS."""

    leased_until = models.DateTimeField(
        _("leased until"), null=True, blank=True, editable=False
    )
    attempts = models.PositiveSmallIntegerField(
        _("attempts"), default=0, editable=False
    )

    class Meta:
        abstract = True


class DicomWebImport(LeasedTask):
    """One "Bring in" of a study from the department's DICOMweb source.

    The task (studies/dicomnet/tasks.py) retrieves the study instance by
    instance and keeps the counts here, which the status page shows.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting")
        RUNNING = "running", _("bringing in")
        DONE = "done", _("done")
        PARTIAL = "partial", _("partly done")
        FAILED = "failed", _("failed")

    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, related_name="dicomweb_imports"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    study_instance_uid = models.CharField(_("study instance UID"), max_length=64)
    # What the source said of the study, for the status page before it is in.
    patient_name = models.CharField(_("patient"), max_length=200, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    study_date = models.DateField(_("study date"), null=True, blank=True)
    study = models.ForeignKey(
        "Study",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    total = models.PositiveIntegerField(_("instances"), default=0)
    imported = models.PositiveIntegerField(_("imported"), default=0)
    already_present = models.PositiveIntegerField(_("already present"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    # One short line per failed instance: {"sop_instance_uid": ..., "reason": ...}.
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    CLAIMED = Status.RUNNING

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("DICOMweb import")
        verbose_name_plural = _("DICOMweb imports")

    def __str__(self):
        return f"{self.study_instance_uid} ({self.get_status_display()})"

    @property
    def is_finished(self):
        return self.status in (
            self.Status.DONE,
            self.Status.PARTIAL,
            self.Status.FAILED,
        )

    @property
    def handled(self):
        return self.imported + self.already_present + self.failed

    @property
    def is_stalled(self):
        return is_stalled(self)

    @property
    def is_interrupted(self):
        return is_interrupted(self)


def is_stalled(row) -> bool:
    """Held by nobody: waiting or running past its lease (its worker died)."""
    return (
        row.status in (row.Status.PENDING, row.CLAIMED)
        and row.leased_until is not None
        and row.leased_until < timezone.now()
    )


def is_interrupted(row) -> bool:
    """Stopped midway by a worker that died: re-queued to resume, or about to be."""
    if row.status == row.Status.PENDING:
        return row.attempts > 0
    return row.status == row.CLAIMED and is_stalled(row)
