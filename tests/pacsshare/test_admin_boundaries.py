"""Django admin holds the department boundary for every registered model.

An admin of department Alpha, even one holding every Django permission, walks
every ModelAdmin (list, each list filter's choices, change, history, delete
confirmation, autocomplete) and meets nothing of department Beta: no patient
name, report text, private contact data or label of Beta, and Beta's objects
answer 403, 404 or a redirect to the list.
"""

from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from recipients.models import SERVICE_DESK_GROUP, Favorite, Membership
from sharing.models import AuditEvent, Label, Notification
from studies.models import Instance, Report, ReportRevision
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    SeriesFactory,
    ShareFactory,
    StudyFactory,
    UserFactory,
    UserGroupFactory,
)

pytestmark = pytest.mark.django_db

# Text that belongs to department Beta only; none of it may reach Alpha's admin.
BETA_SECRETS = [
    "Bravopatient",
    "BRAVO-PID-1",
    "Bravo report text",
    "Bravo earlier report",
    "Bravomember",
    "bravo.private",
    "+32470999888",
    "Bravolabel",
    "Bravogroup",
    "Bravo study description",
    "Bravo series description",
    "1.2.826.0.1.9999.1",
    "Radiology Beta",
    "Bravo reason",
    "Bravo subject",
]
# Alpha's own member's private contact data is masked, even for Alpha's admin.
ALPHA_PRIVATE = ["alpha.private@example.org", "+32470111222"]


def _department_world(*, code, name, word):
    department = DepartmentFactory(code=code, name=name)
    member = UserFactory(
        username=f"{word.lower()}-member",
        last_name=f"{word}member",
        email=f"{word.lower()}.private@example.org",
        mobile="+32470999888" if word == "Bravo" else "+32470111222",
    )
    Membership.objects.create(user=member, department=department)
    study = StudyFactory(
        patient__department=department,
        patient__family_name=f"{word}patient",
        patient__patient_id=f"{word.upper()}-PID-1",
        description=f"{word} study description",
    )
    series = SeriesFactory(study=study, description=f"{word} series description")
    Instance.objects.create(
        series=series,
        sop_instance_uid="1.2.826.0.1.9999.1" if word == "Bravo" else "1.2.826.0.1.1",
        file="x.dcm",
    )
    report = Report.objects.create(study=study, text=f"{word} report text")
    ReportRevision.objects.create(
        report=report, text=f"{word} earlier report", author=member
    )
    label = Label.objects.create(department=department, name=f"{word}label")
    share = ShareFactory(
        sender=member,
        source_department=department,
        studies=[study],
        reason=f"{word} reason",
        label=label,
    )
    bucket = BucketFactory(share=share, recipient_user=member)
    Notification.objects.create(
        channel=Notification.Channel.SMS,
        kind=Notification.Kind.SHARE,
        bucket=bucket,
        user=member,
        to_address=member.mobile,
        language="en",
        subject=f"{word} subject",
    )
    AuditEvent.objects.create(
        action=AuditEvent.Action.SHARE_CREATED,
        actor=member,
        department=department,
        share=share,
        bucket=bucket,
        study_uids=[study.study_instance_uid],
    )
    group = UserGroupFactory(name=f"{word}group")
    group.members.add(member)
    Favorite.objects.create(owner=member, group=group)
    return SimpleNamespace(department=department, member=member, study=study)


@pytest.fixture
def world():
    alpha = _department_world(code="alpha", name="Radiology Alpha", word="Alpha")
    beta = _department_world(code="beta", name="Radiology Beta", word="Bravo")
    admin_a = UserFactory(username="admin-alpha", is_staff=True)
    Membership.objects.create(user=admin_a, department=alpha.department, is_admin=True)
    # Every Django permission there is: the boundary must not rest on them.
    admin_a.user_permissions.set(Permission.objects.all())
    desk = UserFactory(username="desk", is_staff=True)
    desk.groups.add(Group.objects.get_or_create(name=SERVICE_DESK_GROUP)[0])
    desk.user_permissions.set(Permission.objects.all())
    return SimpleNamespace(alpha=alpha, beta=beta, admin_a=admin_a, desk=desk)


def _registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _url(model, view, *args):
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def _leaks(text, secrets=BETA_SECRETS):
    return [secret for secret in secrets if secret in text]


def _filter_choice_urls(client, model, model_admin, user):
    """Return the query strings of every choice of every list filter."""
    from django.test import RequestFactory

    request = RequestFactory().get(_url(model, "changelist"))
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    assert isinstance(changelist, ChangeList)
    urls = []
    for spec in changelist.filter_specs:
        for choice in spec.choices(changelist):
            urls.append(choice["query_string"])
    return urls


def _beta_objects(model, model_admin, world):
    """Return the objects the service desk sees and Alpha's admin must not."""
    from django.test import RequestFactory

    def scoped(user):
        request = RequestFactory().get("/")
        request.user = user
        return set(model_admin.get_queryset(request).values_list("pk", flat=True))

    return sorted(scoped(world.desk) - scoped(world.admin_a))


def test_it_shows_an_alpha_admin_nothing_of_beta_on_any_admin_page(client, world):
    client.force_login(world.admin_a)
    leaks = []
    hidden = 0

    for model, model_admin in _registered():
        label = model._meta.label
        changelist = client.get(_url(model, "changelist"))
        assert changelist.status_code in (200, 403), (label, changelist.status_code)
        leaks += [(label, "list", s) for s in _leaks(changelist.content.decode())]
        leaks += [
            (label, "list", s)
            for s in _leaks(changelist.content.decode(), ALPHA_PRIVATE)
        ]
        if changelist.status_code == 200:
            for query in _filter_choice_urls(client, model, model_admin, world.admin_a):
                page = client.get(_url(model, "changelist") + query)
                assert page.status_code == 200, (label, query, page.status_code)
                leaks += [(label, query, s) for s in _leaks(page.content.decode())]
        for pk in _beta_objects(model, model_admin, world):
            hidden += 1
            for view in ("change", "history", "delete"):
                response = client.get(_url(model, view, pk), follow=True)
                first = response.redirect_chain[0] if response.redirect_chain else None
                assert response.status_code in (200, 403, 404), (label, view, pk)
                if first is not None:
                    # Django's "does not exist" redirect, to the index or the list.
                    assert first[0].split("?")[0] in (
                        reverse("admin:index"),
                        _url(model, "changelist"),
                    ), (label, view, first)
                leaks += [(label, view, s) for s in _leaks(response.content.decode())]

    assert leaks == []
    # The walk reached Beta's objects of every department-bound model.
    assert hidden >= 13


def test_it_shows_an_alpha_admin_their_own_department(client, world):
    client.force_login(world.admin_a)

    patients = client.get(_url(world.alpha.study.patient.__class__, "changelist"))
    report = client.get(_url(Report, "change", world.alpha.study.report.pk))
    member = client.get(
        _url(world.alpha.member.__class__, "change", world.alpha.member.pk)
    )

    assert "Alphapatient" in patients.content.decode()
    assert "Alpha report text" in report.content.decode()
    page = member.content.decode()
    assert member.status_code == 200
    assert "Alphamember" in page
    assert _leaks(page, ALPHA_PRIVATE) == []
    assert "a…@example.org" in page and "…22" in page


def test_it_shows_the_service_desk_every_department(client, world):
    client.force_login(world.desk)

    patients = client.get(_url(world.beta.study.patient.__class__, "changelist"))
    member = client.get(
        _url(world.beta.member.__class__, "change", world.beta.member.pk)
    )

    assert "Bravopatient" in patients.content.decode()
    assert "Alphapatient" in patients.content.decode()
    assert "+32470999888" in member.content.decode()


def test_it_autocompletes_nothing_of_beta(client, world):
    client.force_login(world.admin_a)
    leaks = []
    asked = 0

    registry = dict(_registered())
    for source in {m for m, _ in _registered()} | {Membership}:
        for field in source._meta.get_fields():
            remote = getattr(field, "related_model", None)
            if not (field.concrete and field.is_relation) or remote not in registry:
                continue
            asked += 1
            query = urlencode(
                {
                    "app_label": source._meta.app_label,
                    "model_name": source._meta.model_name,
                    "field_name": field.name,
                    "term": "",
                }
            )
            response = client.get(reverse("admin:autocomplete") + "?" + query)
            assert response.status_code in (200, 403, 404), (source, field.name)
            leaks += [
                (source, field.name, s) for s in _leaks(response.content.decode())
            ]
    # Alpha's admin does find Alpha's departments through the membership field.
    membership = client.get(
        reverse("admin:autocomplete")
        + "?app_label=recipients&model_name=membership&field_name=department&term="
    )

    assert asked > 10
    assert leaks == []
    assert "Radiology Alpha" in membership.content.decode()


def test_it_lets_an_alpha_admin_change_nothing_of_beta(client, world):
    client.force_login(world.admin_a)
    report = world.beta.study.report

    response = client.post(
        _url(Report, "change", report.pk), {"study": report.study_id, "text": "X"}
    )
    deleted = client.post(_url(Report, "delete", report.pk), {"post": "yes"})

    report.refresh_from_db()
    assert response.status_code in (302, 403, 404)
    assert deleted.status_code in (302, 403, 404)
    assert report.text == "Bravo report text"
    assert Report.objects.filter(pk=report.pk).exists()
