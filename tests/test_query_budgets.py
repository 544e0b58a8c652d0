"""Query budgets of the hot pages: a fixed number of queries, at most 10, however
many rows the database holds (10 or 1,000 of each kind).

These are the pages `make bench` serves under load (bench/pages.py): the overview
(50 rows), each wizard step, the directory search fragment, the SMS code page and
an already rendered frame. Each is counted once the session is warm (a page seen
before, as under load), with every query of the request: session, user, view.
"""

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from recipients.models import Favorite, PhysicianNumber, User
from sharing.models import Bucket, Label, Notification, Share
from studies.models import Instance, Patient, Report, Series, Study
from tests.factories import DepartmentFactory, UserFactory, shipped_file

pytestmark = pytest.mark.django_db

BUDGET = 10
SMALL, LARGE = 10, 1000
CT_SMALL = shipped_file("CT_small.dcm")
SEARCH = "peeters"


class World:
    """A department with a sender, and rows of every kind the pages touch."""

    def __init__(self):
        self.department = DepartmentFactory(code="budget-rad", max_recipients=3)
        self.other = DepartmentFactory(code="budget-other")
        self.sender = UserFactory(
            username="budget-sender", departments=[self.department]
        )
        for name in ("Second opinion", "Tumour board", "Urgent review"):
            Label.objects.create(department=self.department, name=name)
        self.count = 0
        self.study = None
        self.instance = None
        self.otp_bucket = None

    def grow(self, n):
        """Add rows until there are n studies, series, instances, reports, users
        named Peeters, physician numbers, favorites, shares, buckets and mails."""
        start, self.count = self.count, n
        patients = Patient.objects.bulk_create(
            Patient(
                department=self.department,
                patient_id=f"P{i:06d}",
                family_name=f"Janssens{i}",
                given_name="Marie",
            )
            for i in range(start, n)
        )
        today = timezone.localdate()
        studies = Study.objects.bulk_create(
            Study(
                department=self.department,
                patient=patient,
                study_instance_uid=f"1.2.826.0.1.3680043.99.{i}",
                study_date=today,
                description="CT thorax",
                modalities="CT",
            )
            for i, patient in zip(range(start, n), patients, strict=True)
        )
        series = Series.objects.bulk_create(
            Series(
                study=study,
                series_instance_uid=f"1.2.826.0.1.3680043.98.{i}",
                modality="CT",
                series_number=1,
            )
            for i, study in zip(range(start, n), studies, strict=True)
        )
        instances = Instance.objects.bulk_create(
            Instance(
                series=s,
                sop_instance_uid=f"1.2.826.0.1.3680043.97.{i}",
                instance_number=1,
                has_pixels=True,
                file="dicom/budget.dcm",
            )
            for i, s in zip(range(start, n), series, strict=True)
        )
        Report.objects.bulk_create(
            Report(study=study, text="No nodule.") for study in studies
        )
        users = []
        for i in range(start, n):
            user = User(
                username=f"peeters{i}",
                first_name="Anne",
                last_name=f"Peeters{i}",
                email=f"peeters{i}@example.org",
                mobile=f"+32475{i:06d}",
                password="!",
            )
            user.refresh_search_fields()
            users.append(user)
        users = User.objects.bulk_create(users)
        PhysicianNumber.objects.bulk_create(
            PhysicianNumber(
                user=u,
                scheme="RIZIV",
                number=f"1{i:07d}000",
                number_digits=f"1{i:07d}000",
            )
            for i, u in zip(range(start, n), users, strict=True)
        )
        Favorite.objects.bulk_create(Favorite(owner=self.sender, user=u) for u in users)
        shares = Share.objects.bulk_create(
            Share(
                sender=u,
                source_department=self.other,
                access="read",
                reason="budget",
                language="en",
                patient_agreed_at=timezone.now(),
            )
            for u in users
        )
        buckets = []
        for share in shares:
            bucket = Bucket(share=share, recipient_user=self.sender, require_otp=True)
            bucket.set_link_secret()
            buckets.append(bucket)
        buckets = Bucket.objects.bulk_create(buckets)
        Share.studies.through.objects.bulk_create(
            Share.studies.through(share=share, study=study)
            for share, study in zip(shares, studies, strict=True)
        )
        Notification.objects.bulk_create(
            Notification(
                channel="email",
                kind="share",
                bucket=b,
                to_address="x@example.org",
                language="en",
                status="sent",
            )
            for b in buckets
        )
        if self.study is None:
            self.study, self.instance, self.otp_bucket = (
                studies[0],
                instances[0],
                buckets[0],
            )

    def studies(self, limit=200):
        return list(
            Study.objects.filter(department=self.department).order_by("pk")[:limit]
        )


@pytest.fixture
def world(settings):
    settings.OVERVIEW_PAGE_SIZE = 50
    media = Path(settings.MEDIA_ROOT, "dicom")
    media.mkdir(parents=True, exist_ok=True)
    shutil.copy(CT_SMALL, media / "budget.dcm")
    return World()


@pytest.fixture
def sender_client(client, world):
    client.force_login(world.sender)
    return client


def queries_of(client, url, *, marker=None):
    """GET url twice (the first warms the session); return the second's queries."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if marker is not None:
        assert marker in response.content.decode()
    # Savepoints exist only because each test runs inside a transaction.
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def wizard_url(step):
    return reverse("sharing:share_step", kwargs={"step": step})


def prepare_wizard(client, world):
    """Start the wizard on the department's studies and pass two steps."""
    ids = "&".join(f"studies={s.pk}" for s in world.studies())
    client.get(f"{reverse('sharing:share_start')}?{ids}")
    response = client.post(
        wizard_url("studies"),
        {
            "share_wizard-current_step": "studies",
            "studies-studies": [str(s.pk) for s in world.studies()],
        },
    )
    assert response.status_code == 302
    chosen = list(User.objects.filter(username__startswith="peeters").order_by("pk"))
    data = {
        "share_wizard-current_step": "recipients",
        "recipients-TOTAL_FORMS": "3",
        "recipients-INITIAL_FORMS": "0",
        "recipients-MIN_NUM_FORMS": "0",
        "recipients-MAX_NUM_FORMS": "1000",
    }
    for index, user in enumerate(chosen[:3]):
        data[f"recipients-{index}-key"] = f"user:{user.pk}"
        data[f"recipients-{index}-send_mail"] = "on"
        data[f"recipients-{index}-require_otp"] = "on"
    response = client.post(wizard_url("recipients"), data)
    assert response.status_code == 302, response.context["form"].errors


def frame_url(world):
    return reverse("studies:frame", args=[world.study.pk, world.instance.pk, 0, "png"])


def otp_url(world):
    return reverse("sharing:bucket_code", kwargs={"bucket_id": world.otp_bucket.pk})


PAGES = {
    "overview": (lambda world: reverse("studies:overview"), "studies-table"),
    "wizard studies": (lambda world: wizard_url("studies"), "study-choice"),
    "wizard recipients": (lambda world: wizard_url("recipients"), "recipients-0-key"),
    "wizard parameters": (lambda world: wizard_url("parameters"), "parameters-reason"),
    "directory search": (
        lambda world: f"{reverse('recipients:quick_search')}?q={SEARCH}",
        "Peeters",
    ),
    "SMS code page": (otp_url, "code"),
    "frame": (frame_url, None),
}


@pytest.mark.parametrize("page", PAGES)
def test_it_runs_a_fixed_number_of_queries_at_most_ten(sender_client, world, page):
    url_of, marker = PAGES[page]
    counts = []
    for n in (SMALL, LARGE):
        world.grow(n)
        if page.startswith("wizard"):
            prepare_wizard(sender_client, world)
        counts.append(queries_of(sender_client, url_of(world), marker=marker))

    small, large = counts
    assert len(large) <= len(small), "\n".join(large)
    assert len(small) <= BUDGET, "\n".join(small)


def test_it_serves_the_overview_fifty_rows_a_page(sender_client, world):
    world.grow(60)

    response = sender_client.get(reverse("studies:overview"))

    assert len(response.context["studies"]) == 50
    assert settings.OVERVIEW_PAGE_SIZE == 50
