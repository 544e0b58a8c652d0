"""No HTML from data reaches a page as markup.

A payload that closes an attribute and a textarea and opens an element of its
own goes into every free-text value a page shows: the DICOM patient name and
descriptions (imported from a file), user, group, department and label names,
the message, the reason, the report and its revision, the audit log's user
agent. Every page the sender, the recipient, a department admin and the
service desk open is parsed; none may hold the injected element or attribute.
"""

import datetime
from html.parser import HTMLParser
from pathlib import Path

import pydicom
import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from pydicom.uid import generate_uid

from recipients.models import SERVICE_DESK_GROUP, Favorite, Membership
from sharing.models import AuditEvent, Label, Notification
from studies.dicom_import import import_dicom_paths
from studies.models import Report, ReportRevision, Study
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    ShareFactory,
    UserFactory,
    UserGroupFactory,
)

pytestmark = [
    pytest.mark.django_db,
    # The payload makes the DICOM patient name longer than a PN component may be.
    pytest.mark.filterwarnings("ignore:The PN component length:UserWarning:pydicom"),
]

# No "=" nor "^" (DICOM person-name separators); short enough for a label name.
MARK = "xinj"
PAYLOAD = f"\"'></textarea><{MARK} {MARK}>X</{MARK}>"
SAMPLE = Path(pydicom.data.DATA_ROOT, "test_files", "CT_small.dcm")


class InjectionFinder(HTMLParser):
    """Collect the injected element or attribute wherever the parser meets it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag == MARK or any(name == MARK for name, _value in attrs):
            self.found.append((tag, attrs))

    handle_startendtag = handle_starttag


def _injected(html):
    finder = InjectionFinder()
    finder.feed(html)
    finder.close()
    return finder.found


def _import_study(tmp_path, department):
    dataset = pydicom.dcmread(SAMPLE)
    dataset.PatientName = f"{PAYLOAD}^{PAYLOAD}"
    dataset.PatientID = "INJ-1"
    dataset.StudyDescription = PAYLOAD
    dataset.SeriesDescription = PAYLOAD
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    path = tmp_path / "hostile.dcm"
    dataset.save_as(path)
    import_dicom_paths(paths=[path], department=department)
    return Study.objects.get(study_instance_uid=dataset.StudyInstanceUID)


@pytest.fixture
def world(tmp_path):
    department = DepartmentFactory(code="inj", name=f"Radiology {PAYLOAD}")
    other = DepartmentFactory(code="inj-other", name=f"Other {PAYLOAD}")
    named = {"first_name": PAYLOAD, "last_name": PAYLOAD, "title": "Dr."}
    sender = UserFactory(username="sender-inj", city=PAYLOAD, **named)
    admin_user = UserFactory(username="admin-inj", is_staff=True, **named)
    recipient = UserFactory(
        username="recipient-inj", speciality=PAYLOAD, mobile="+32475000001", **named
    )
    Membership.objects.create(user=sender, department=department)
    Membership.objects.create(user=admin_user, department=department, is_admin=True)
    Membership.objects.create(user=recipient, department=other)
    desk = UserFactory(username="desk-inj", is_staff=True, **named)
    desk.groups.add(Group.objects.get_or_create(name=SERVICE_DESK_GROUP)[0])
    desk.user_permissions.set(Permission.objects.all())

    study = _import_study(tmp_path, department)
    report = Report.objects.create(study=study, text=PAYLOAD, updated_by=sender)
    ReportRevision.objects.create(report=report, text=PAYLOAD, author=sender)
    label = Label.objects.create(department=department, name=PAYLOAD[:60])
    group = UserGroupFactory(name=f"Group {PAYLOAD}", city=PAYLOAD)
    group.members.add(recipient)
    share = ShareFactory(
        sender=sender,
        source_department=department,
        studies=[study],
        access="write",
        reason=PAYLOAD,
        message=PAYLOAD,
        label=label,
        label_scope="user",
        valid_until=datetime.date.today() + datetime.timedelta(days=30),
    )
    bucket = BucketFactory(share=share, recipient_user=recipient)
    BucketFactory(share=share, recipient_user=None, recipient_group=group)
    BucketFactory(share=share, recipient_user=None, recipient_department=other)
    Notification.objects.create(
        channel=Notification.Channel.EMAIL,
        kind=Notification.Kind.SHARE,
        bucket=bucket,
        user=recipient,
        to_address="recipient@example.org",
        language="en",
        subject=PAYLOAD,
        error=PAYLOAD,
    )
    AuditEvent.objects.create(
        action=AuditEvent.Action.SHARE_CREATED,
        actor=sender,
        department=department,
        share=share,
        bucket=bucket,
        user_agent=PAYLOAD,
        details={"note": PAYLOAD},
    )
    for target in ({"user": recipient}, {"group": group}, {"department": other}):
        Favorite.objects.create(owner=sender, **target)
    return {
        "sender": sender,
        "admin": admin_user,
        "recipient": recipient,
        "desk": desk,
        "study": study,
        "series": study.series.get(),
        "share": share,
        "bucket": bucket,
    }


ESCAPED = f"&lt;{MARK} {MARK}&gt;"


def _visit(client, user, urls, allowed=(200,), shown_on=()):
    """Return {url: injected markup}; check the payload is shown as text where
    it must be (so the test cannot pass on pages that show nothing)."""
    client.force_login(user)
    found = {}
    for url in urls:
        response = client.get(url, follow=True)
        assert response.status_code in allowed, (url, response.status_code)
        content = response.content.decode()
        if url in shown_on:
            assert ESCAPED in content, url
        hits = _injected(content)
        if hits:
            found[url] = hits
    return found


def _sender_pages(world):
    study, series, share = world["study"], world["series"], world["share"]
    return [
        reverse("studies:overview"),
        reverse("studies:overview") + f"?patient={MARK}",
        reverse("studies:study", args=[study.pk]),
        reverse("studies:series", args=[study.pk, series.pk]),
        reverse("sharing:share_done", args=[share.pk]),
        reverse("sharing:status_forwarding"),
        reverse("sharing:status_forwarding") + f"?q={MARK}",
        reverse("recipients:quick_search") + f"?q={MARK}",
        reverse("recipients:quick_search") + f"?q={MARK}&mode=browse",
        reverse("recipients:detailed_search") + f"?kind=user&last_name={MARK}",
        reverse("recipients:detailed_search") + f"?kind=group&name={MARK}",
        reverse("recipients:detailed_search") + f"?kind=department&name={MARK}",
        reverse("recipients:favorites"),
        reverse("recipients:favorites_fragment"),
        reverse("sharing:share_start") + f"?studies={study.pk}",
    ]


def _recipient_pages(world):
    bucket, study, series = world["bucket"], world["study"], world["series"]
    ids = {"bucket_id": bucket.pk, "study_id": study.pk}
    return [
        reverse("sharing:shared_with_me"),
        reverse("sharing:received", args=[bucket.pk]),
        reverse("sharing:received_study", kwargs=ids),
        reverse("sharing:received_series", kwargs={**ids, "series_id": series.pk}),
        reverse("sharing:received_message", kwargs=ids),
        reverse("sharing:received_report", kwargs=ids),
    ]


def _admin_pages():
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        for pk in model._default_manager.values_list("pk", flat=True)[:20]:
            for view in ("change", "history", "delete"):
                urls.append(
                    reverse(
                        f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[pk]
                    )
                )
    return urls


def test_the_payload_reaches_the_pages_as_text(client, world):
    # Guard against a test that passes because nothing was shown at all.
    client.force_login(world["sender"])

    page = client.get(reverse("sharing:share_done", args=[world["share"].pk]))

    assert ESCAPED in page.content.decode()
    assert _injected(f"<p>{PAYLOAD}</p>")


def test_the_sender_meets_no_injected_markup(client, world):
    pages = _sender_pages(world)

    assert _visit(client, world["sender"], pages, shown_on=pages[:6]) == {}


def test_the_recipient_meets_no_injected_markup(client, world):
    pages = _recipient_pages(world)

    assert _visit(client, world["recipient"], pages, shown_on=pages) == {}


def test_the_department_admin_and_the_desk_meet_no_injected_markup(client, world):
    status = [reverse("sharing:status_forwarding")]

    # A department admin meets 403 on what is the service desk's alone.
    assert _visit(client, world["admin"], status + _admin_pages(), (200, 403)) == {}
    assert _visit(client, world["desk"], status + _admin_pages(), (200, 403)) == {}
