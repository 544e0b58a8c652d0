"""factory_boy factories for the domain; tests build what they need with these."""

import datetime

import factory
from django.utils import timezone
from pydicom.uid import generate_uid

from recipients.models import Department, Membership, PhysicianNumber, User, UserGroup
from studies.models import Patient, Series, Study


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
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

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


# -- sharing (added by the notifications work; extend freely) ---------------------


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
