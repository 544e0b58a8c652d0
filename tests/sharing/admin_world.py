"""Two sending departments, their admins, a sender, the service desk and a
plain member, each department with one locked bucket: what the admin tests need."""

from types import SimpleNamespace

from django.contrib.auth.models import Group
from django.utils import timezone

from recipients.models import SERVICE_DESK_GROUP
from tests.factories import (
    BucketFactory,
    DepartmentFactory,
    MembershipFactory,
    ShareFactory,
    StudyFactory,
    UserFactory,
)


def locked_bucket(*, department, sender, failed=5, **kwargs):
    study = StudyFactory(patient__department=department)
    share = ShareFactory(sender=sender, source_department=department, studies=[study])
    return BucketFactory(
        share=share,
        require_otp=True,
        failed_otp_attempts=failed,
        locked_at=timezone.now() if failed >= 5 else None,
        **kwargs,
    )


def build_world():
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
