"""The one place that builds test data.

factory_boy factories make single rows; the builders below compose them: DICOM
instances from pydicom's shipped files, a share and its bucket, a bucket whose
study holds real images, and the worlds the admin, wizard and browser tests share.
Test modules keep only what is specific to them (page posts, URLs, assertions).
"""

import datetime
import io
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import factory
import pydicom
import pydicom.data
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.utils import timezone
from pydicom.uid import generate_uid

from recipients.models import (
    SERVICE_DESK_GROUP,
    Department,
    Favorite,
    Membership,
    PhysicianNumber,
    User,
    UserGroup,
)
from sharing.models import Label
from sharing.wizard.services import ShareRecipient, share_create
from studies.models import Instance, Patient, Report, Series, Study

PASSWORD = "pw-for-tests-1"
MESSAGE = "Please look at the left lower lobe."
REPORT_TEXT = "No pulmonary embolism. Nodule of 4 mm in the left lower lobe."


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"Radiology {n}")
    code = factory.Sequence(lambda n: f"dept-{n}")
    city = "Brussels"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = factory.Sequence(lambda n: f"Last{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    mobile = factory.Sequence(lambda n: f"+32475{n:06d}")
    language = "en"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def departments(self, create, extracted, **kwargs):
        if create and extracted:
            for department in extracted:
                Membership.objects.get_or_create(user=self, department=department)
            self.save()
        elif create:
            self.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    department = factory.SubFactory(DepartmentFactory)
    is_admin = False


class PhysicianNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhysicianNumber

    user = factory.SubFactory(UserFactory)
    scheme = "RIZIV"
    number = factory.Sequence(lambda n: f"1-{n:05d}-00-000")


class UserGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserGroup

    name = factory.Sequence(lambda n: f"Group {n}")
    is_public = True


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    department = factory.SubFactory(DepartmentFactory)
    patient_id = factory.Sequence(lambda n: f"PID{n:06d}")
    family_name = factory.Sequence(lambda n: f"Peeters{n}")
    given_name = "Jan"
    birth_date = datetime.date(1970, 5, 17)


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    patient = factory.SubFactory(PatientFactory)
    department = factory.SelfAttribute("patient.department")
    study_instance_uid = factory.LazyFunction(generate_uid)
    accession_number = factory.Sequence(lambda n: f"ACC{n:06d}")
    study_date = factory.LazyFunction(lambda: timezone.localdate())
    description = "CT thorax"
    modalities = "CT"


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Series

    study = factory.SubFactory(StudyFactory)
    series_instance_uid = factory.LazyFunction(generate_uid)
    modality = "CT"
    series_number = 1
    description = "Axial"


# -- sharing ----------------------------------------------------------------------


class ShareFactory(factory.django.DjangoModelFactory):
    """A completed share; pass ``studies=[...]`` to attach studies."""

    class Meta:
        model = "sharing.Share"
        skip_postgeneration_save = True

    sender = factory.SubFactory(UserFactory)
    source_department = factory.SubFactory(DepartmentFactory)
    access = "read"
    reason = "Second opinion"
    language = "en"
    patient_agreed_at = factory.LazyFunction(timezone.now)
    message = ""

    @factory.post_generation
    def studies(self, create, extracted, **kwargs):
        if create and extracted:
            self.studies.set(extracted)


class BucketFactory(factory.django.DjangoModelFactory):
    """A bucket for one recipient (a user by default), with a fresh link secret.

    The link token is ``bucket.link_token`` (derived, never stored).
    """

    class Meta:
        model = "sharing.Bucket"

    share = factory.SubFactory(ShareFactory)
    recipient_user = factory.SubFactory(UserFactory)
    require_otp = False
    send_mail = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        bucket = model_class(*args, **kwargs)
        bucket.set_link_secret()
        bucket.save()
        return bucket


class OTPDeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "sharing.OTPDevice"

    bucket = factory.SubFactory(BucketFactory, require_otp=True)
    user = factory.SelfAttribute("bucket.recipient_user")
    name = "SMS"


# -- DICOM instances from pydicom's shipped test files ------------------------------

TEST_FILES = Path(pydicom.data.DATA_ROOT, "test_files")
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def shipped_file(name):
    return TEST_FILES / name


def _int(ds, keyword, default=None):
    try:
        return int(ds.get(keyword, default) or default)
    except (TypeError, ValueError):
        return default


def instance_create(*, series, data, number=1):
    """Store DICOM bytes as an Instance of ``series`` (header values best effort)."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    sop_uid = str(ds.get("SOPInstanceUID", "") or "") or generate_uid()
    if Instance.objects.filter(sop_instance_uid=sop_uid).exists():
        sop_uid = generate_uid()
    instance = Instance(
        series=series,
        sop_instance_uid=sop_uid,
        sop_class_uid=str(ds.get("SOPClassUID", "") or ""),
        instance_number=number,
        number_of_frames=_int(ds, "NumberOfFrames", 1) or 1,
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        has_pixels=any(k in ds for k in PIXEL_KEYWORDS),
    )
    instance.file.save(f"{sop_uid}.dcm", ContentFile(data), save=False)
    instance.save()
    study_recount(series.study)
    return instance


def study_recount(study):
    """Set the study's kept series and image counts, as the import keeps them."""
    type(study).objects.filter(pk=study.pk).update(
        series_count=study.series.count(),
        instance_count=Instance.objects.filter(series__study=study).count(),
    )


def study_file_bytes(name, *, study, series, **changes):
    """Return a shipped file rewritten to belong to ``study``/``series``.

    The patient module and accession come from the database, as an import
    would have left them; ``changes`` sets further attributes by keyword.
    """
    ds = pydicom.dcmread(shipped_file(name))
    patient = study.patient
    ds.PatientName = f"{patient.family_name}^{patient.given_name}"
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    ds.AccessionNumber = study.accession_number
    ds.StudyInstanceUID = study.study_instance_uid
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def add_images(series, name, *, count=1, **changes):
    """Store ``count`` copies of shipped file ``name`` in ``series``, numbered 1..count.

    Each copy is rewritten to the series' study (new SOP Instance UID each);
    ``changes`` sets further attributes on every copy.
    """
    for number in range(1, count + 1):
        data = study_file_bytes(name, study=series.study, series=series, **changes)
        instance_create(series=series, data=data, number=number)


def add_ct_and_mr_images(*, ct, mr):
    """Give ``ct`` two CT images and ``mr`` one MR image, as a real study has them.

    The CT images share a frame of reference and name an institution and a
    referring physician: values a de-identified copy must lose.
    """
    add_images(
        ct,
        "CT_small.dcm",
        count=2,
        FrameOfReferenceUID=generate_uid(),
        InstitutionName="AZ Sint-Jan Brugge",
        ReferringPhysicianName="Janssens^Marie",
    )
    add_images(mr, "MR_small.dcm")


# -- a share and its bucket -----------------------------------------------------------


def make_share(*, department=None, study_kwargs=None, **share_kwargs):
    """Return a one-study share from "Radiologie AZ Sint-Jan" by Dr. Anna Claes.

    The study is patient Jan Peeters' CT thorax of 5 March 2024; ``study_kwargs``
    and the share's fields override.
    """
    if department is None:
        department = DepartmentFactory(name="Radiologie AZ Sint-Jan")
    patient = PatientFactory(
        department=department, given_name="Jan", family_name="Peeters"
    )
    study = StudyFactory(
        patient=patient,
        **{
            "description": "CT thorax",
            "study_date": datetime.date(2024, 3, 5),
            **(study_kwargs or {}),
        },
    )
    sender = UserFactory(first_name="Anna", last_name="Claes", title="Dr.")
    share_kwargs = {
        "sender": sender,
        "source_department": department,
        "language": "en",
        "message": MESSAGE,
        "reason": "Confidential reason XYZZY",
        **share_kwargs,
    }
    return ShareFactory(studies=[study], **share_kwargs)


def make_bucket(
    *,
    recipient=None,
    require_otp=True,
    department=None,
    study_kwargs=None,
    bucket_kwargs=None,
    **share_kwargs,
):
    """Return the bucket of a ``make_share()`` share, its study with one series.

    Without ``department`` the share comes from a new "Radiologie AZ Sint-Jan"
    whose admin is Ada Admin. The recipient is a new user unless ``recipient``
    or a group or department recipient in ``bucket_kwargs`` is given.
    """
    if department is None:
        department = DepartmentFactory(name="Radiologie AZ Sint-Jan")
        admin = UserFactory(
            first_name="Ada", last_name="Admin", email="admin@azsintjan.example"
        )
        MembershipFactory(user=admin, department=department, is_admin=True)
    share = make_share(department=department, study_kwargs=study_kwargs, **share_kwargs)
    SeriesFactory(study=share.studies.get(), description="Axial 1mm")
    bucket_kwargs = dict(bucket_kwargs or {})
    if "recipient_group" in bucket_kwargs or "recipient_department" in bucket_kwargs:
        bucket_kwargs.setdefault("recipient_user", None)
    else:
        bucket_kwargs["recipient_user"] = recipient or UserFactory(
            mobile="+32475123456"
        )
    return BucketFactory(share=share, require_otp=require_otp, **bucket_kwargs)


def viewer_bucket(**kwargs):
    """Return a ``make_bucket()`` bucket whose study holds real images and a report.

    Two CT images, one MR image (series 2), ``REPORT_TEXT``, the message
    ``MESSAGE``; no SMS code unless asked. The study, patient and files carry
    identifying values the de-identified download must lose: name Peeters^Jan,
    birth date 1970-05-17, an accession, an institution, a referring physician.
    """
    kwargs.setdefault("require_otp", False)
    study_kwargs = {"accession_number": "ACC-5521", **kwargs.pop("study_kwargs", {})}
    bucket = make_bucket(study_kwargs=study_kwargs, **kwargs)
    study = bucket.share.studies.get()
    ct = study.series.get()
    ct.series_number, ct.modality = 1, "CT"
    ct.save()
    mr = SeriesFactory(study=study, series_number=2, modality="MR", description="T1")
    add_ct_and_mr_images(ct=ct, mr=mr)
    Report.objects.create(study=study, text=REPORT_TEXT)
    return bucket


def locked_bucket(*, department, sender, failed=5, **kwargs):
    """Return a two-factor bucket with ``failed`` wrong codes (locked at five)."""
    study = StudyFactory(patient__department=department)
    share = ShareFactory(sender=sender, source_department=department, studies=[study])
    return BucketFactory(
        share=share,
        require_otp=True,
        failed_otp_attempts=failed,
        locked_at=timezone.now() if failed >= 5 else None,
        **kwargs,
    )


def share_through_service(*, sender, studies, recipient, **overrides):
    """Share with one user through the real ``share_create()`` (mail after commit).

    A write share with an SMS code and a mail, valid ten days; ``overrides`` sets
    any parameter, ``recipient_options`` the recipient's options.
    """
    options = {
        "require_otp": True,
        "send_mail": True,
        **overrides.pop("recipient_options", {}),
    }
    parameters = {
        "access": "write",
        "reason": "Second opinion before the tumour board",
        "language": "en",
        "valid_until": timezone.localdate() + datetime.timedelta(days=10),
        "patient_agreed": True,
        "label": None,
        "label_scope": "",
        "urgent": False,
        "anonymize": False,
        "allow_further_sharing": False,
        "message": "",
        **overrides,
    }
    return share_create(
        sender=sender,
        studies=studies,
        recipients=[ShareRecipient(kind="user", pk=recipient.pk, **options)],
        **parameters,
    )


# -- worlds -------------------------------------------------------------------------


def build_admin_world():
    """Two sending departments, their admins, a sender each, the service desk and
    a plain member, each department with one locked bucket."""
    dept_a = DepartmentFactory(name="Radiology Alpha", code="alpha")
    dept_b = DepartmentFactory(name="Radiology Beta", code="beta")
    admin_a = MembershipFactory(
        department=dept_a, is_admin=True, user__username="admin-a"
    ).user
    admin_b = MembershipFactory(
        department=dept_b, is_admin=True, user__username="admin-b"
    ).user
    sender_a = MembershipFactory(department=dept_a, user__username="sender-a").user
    sender_b = MembershipFactory(department=dept_b, user__username="sender-b").user
    plain = MembershipFactory(department=dept_a, user__username="plain").user
    desk = UserFactory(username="desk")
    desk.groups.add(Group.objects.get_or_create(name=SERVICE_DESK_GROUP)[0])
    return SimpleNamespace(
        dept_a=dept_a,
        dept_b=dept_b,
        admin_a=admin_a,
        admin_b=admin_b,
        sender_a=sender_a,
        sender_b=sender_b,
        plain=plain,
        desk=desk,
        bucket_a=locked_bucket(department=dept_a, sender=sender_a),
        bucket_b=locked_bucket(department=dept_b, sender=sender_b),
    )


@dataclass
class WizardWorld:
    department: object
    sender: object
    studies: list
    en: object
    fr: object
    nl: object
    de: object
    no_mobile: object
    no_email: object
    other_department: object
    foreign_study: object
    extra: dict = field(default_factory=dict)


def build_wizard_world(**department_kwargs):
    """A sender's department with two studies of one patient, recipients in each
    language and without mobile or e-mail, and another department's study."""
    department = DepartmentFactory(
        code="wizard-rad", name="Radiology Wizard", **department_kwargs
    )
    sender = UserFactory(username="sender", departments=[department], language="en")
    patient = PatientFactory(
        department=department, given_name="Marie", family_name="Peeters"
    )
    studies = [
        StudyFactory(patient=patient, description="CT thorax"),
        StudyFactory(patient=patient, description="MR knee"),
    ]
    other = DepartmentFactory(code="wizard-other", name="Other Radiology")
    return WizardWorld(
        department=department,
        sender=sender,
        studies=studies,
        en=UserFactory(username="dr-en", language="en"),
        fr=UserFactory(username="dr-fr", language="fr"),
        nl=UserFactory(username="dr-nl", language="nl"),
        de=UserFactory(username="dr-de", language="de"),
        no_mobile=UserFactory(username="dr-nomobile", mobile=""),
        no_email=UserFactory(username="dr-noemail", email=""),
        other_department=other,
        foreign_study=StudyFactory(
            patient=PatientFactory(department=other), description="Foreign"
        ),
    )


def _story_study(*, department, family, given, description, modality, dicom_file):
    patient = PatientFactory(
        department=department,
        family_name=family,
        given_name=given,
        birth_date=datetime.date(1970, 5, 17),
    )
    study = StudyFactory(
        patient=patient,
        description=description,
        modalities=modality,
        study_date=timezone.localdate() - datetime.timedelta(days=2),
    )
    series = SeriesFactory(
        study=study, modality=modality, series_number=1, description="Axial"
    )
    add_images(series, dicom_file, count=2)
    Report.objects.create(study=study, text=REPORT_TEXT)
    return study


def build_story_world():
    """The browser stories' world: one sending department with a sender and its
    admin, two recipients (one found by quick search, one a favorite of the
    sender), an outsider, a label, and two studies of real DICOM files (pydicom's
    CT_small and MR_small) with reports."""
    department = DepartmentFactory(
        name="Radiology Alpha", code="alpha", max_recipients=3
    )
    sender = MembershipFactory(
        department=department,
        user__username="dr-sender",
        user__title="Dr.",
        user__first_name="Sofie",
        user__last_name="Claes",
    ).user
    admin = MembershipFactory(
        department=department,
        is_admin=True,
        user__username="admin-alpha",
        user__first_name="Anne",
        user__last_name="Admin",
    ).user
    recipient = UserFactory(
        username="dr-recipient",
        title="Dr.",
        first_name="Lucas",
        last_name="Maes",
        email="lucas.maes@example.org",
        mobile="+32475112233",
        language="en",
    )
    PhysicianNumberFactory(user=recipient, scheme="RIZIV", number="1-23456-78-901")
    favorite = UserFactory(
        username="dr-favorite",
        title="Dr.",
        first_name="Emma",
        last_name="Willems",
        email="emma.willems@example.org",
        mobile="+32475445566",
        language="en",
    )
    Favorite.objects.create(owner=sender, user=favorite)
    outsider = UserFactory(username="dr-outsider", first_name="Olaf", last_name="Out")
    label = Label.objects.create(department=department, name="Oncology")
    ct = _story_study(
        department=department,
        family="Peeters",
        given="Jan",
        description="CT thorax",
        modality="CT",
        dicom_file="CT_small.dcm",
    )
    mr = _story_study(
        department=department,
        family="Janssens",
        given="Marie",
        description="MR brain",
        modality="MR",
        dicom_file="MR_small.dcm",
    )
    return SimpleNamespace(
        department=department,
        sender=sender,
        admin=admin,
        recipient=recipient,
        favorite=favorite,
        outsider=outsider,
        label=label,
        ct=ct,
        mr=mr,
    )
