"""The receiver's callers and its "Incoming" list in Django admin, by department.

An admin of department Alpha sees Alpha's callers and associations only; the
rejected associations (no department) and Beta's rows are the service desk's.
The list is read-only for everyone.
"""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from recipients.models import SERVICE_DESK_GROUP, Membership
from studies.models import DicomCaller, IncomingAssociation
from tests.factories import DepartmentFactory, UserFactory

pytestmark = pytest.mark.django_db

CALLERS = reverse("admin:studies_dicomcaller_changelist")
INCOMING = reverse("admin:studies_incomingassociation_changelist")


def _url(model, view, *args):
    return reverse(f"admin:studies_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def world():
    alpha = DepartmentFactory(code="alpha", name="Radiology Alpha")
    beta = DepartmentFactory(code="beta", name="Radiology Beta")
    rows = SimpleNamespace(
        alpha_caller=DicomCaller.objects.create(department=alpha, ae_title="ALPHAAE"),
        beta_caller=DicomCaller.objects.create(
            department=beta, ae_title="BRAVOAE", host="10.1.2.3"
        ),
        alpha_incoming=IncomingAssociation.objects.create(
            department=alpha,
            calling_ae_title="ALPHAAE",
            called_ae_title="PACSSHARE",
            host="10.0.0.1",
            stored=3,
        ),
        beta_incoming=IncomingAssociation.objects.create(
            department=beta,
            calling_ae_title="BRAVOAE",
            called_ae_title="PACSSHARE",
            host="10.1.2.3",
            refused=1,
            reasons=[{"sop_instance_uid": "1.2.3", "reason": "Bravo refusal"}],
        ),
        rejected=IncomingAssociation.objects.create(
            department=None,
            calling_ae_title="ROGUEAE",
            called_ae_title="PACSSHARE",
            host="10.6.6.6",
            accepted=False,
        ),
    )
    admin_a = UserFactory(username="admin-alpha", is_staff=True)
    Membership.objects.create(user=admin_a, department=alpha, is_admin=True)
    admin_a.user_permissions.set(Permission.objects.all())
    desk = UserFactory(username="desk", is_staff=True)
    desk.groups.add(Group.objects.get_or_create(name=SERVICE_DESK_GROUP)[0])
    desk.user_permissions.set(Permission.objects.all())
    return SimpleNamespace(
        alpha=alpha, beta=beta, admin_a=admin_a, desk=desk, **vars(rows)
    )


def test_it_shows_an_alpha_admin_only_alphas_callers_and_associations(client, world):
    client.force_login(world.admin_a)

    callers = client.get(CALLERS).content.decode()
    incoming = client.get(INCOMING).content.decode()
    own = client.get(_url(IncomingAssociation, "change", world.alpha_incoming.pk))

    assert "ALPHAAE" in callers and "ALPHAAE" in incoming
    for secret in ("BRAVOAE", "10.1.2.3", "ROGUEAE", "10.6.6.6", "Radiology Beta"):
        assert secret not in callers
        assert secret not in incoming
    assert own.status_code == 200
    for obj in (world.beta_caller, world.beta_incoming, world.rejected):
        for view in ("change", "history", "delete"):
            response = client.get(_url(type(obj), view, obj.pk), follow=True)
            assert response.status_code in (200, 403, 404)
            page = response.content.decode()
            assert "BRAVOAE" not in page and "ROGUEAE" not in page
            assert "Bravo refusal" not in page


def test_it_shows_the_service_desk_every_association_with_its_reasons(client, world):
    client.force_login(world.desk)

    incoming = client.get(INCOMING).content.decode()
    beta = client.get(_url(IncomingAssociation, "change", world.beta_incoming.pk))

    assert "ALPHAAE" in incoming and "BRAVOAE" in incoming and "ROGUEAE" in incoming
    assert "1.2.3: Bravo refusal" in beta.content.decode()


def test_it_keeps_the_incoming_list_read_only(client, world):
    client.force_login(world.desk)
    record = world.alpha_incoming

    add = client.get(_url(IncomingAssociation, "add"))
    change = client.post(
        _url(IncomingAssociation, "change", record.pk), {"stored": "99"}
    )
    delete = client.post(
        _url(IncomingAssociation, "delete", record.pk), {"post": "yes"}
    )

    record.refresh_from_db()
    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert record.stored == 3


def test_it_lets_only_the_service_desk_add_a_caller(client, world):
    client.force_login(world.admin_a)
    refused = client.post(
        _url(DicomCaller, "add"),
        {"department": world.alpha.pk, "ae_title": "NEWPACS", "host": ""},
    )
    client.force_login(world.desk)
    added = client.post(
        _url(DicomCaller, "add"),
        {"department": world.alpha.pk, "ae_title": "NEWPACS", "host": ""},
    )

    assert refused.status_code == 403
    assert added.status_code == 302
    assert DicomCaller.objects.filter(ae_title="NEWPACS").count() == 1
