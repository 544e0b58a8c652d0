"""Who administers what: the service desk and the departments' admins.

The one definition used by the sender side's guard (sharing.status.guard) and by
the Django admin's department scoping (recipients.admin_scoping).
"""

from .models import Department


def is_service_desk(user):
    """Return whether the user is the service desk (anonymous users are not)."""
    return bool(user.is_authenticated and user.is_active and user.is_service_desk)


def departments_administered_by(*, user):
    """Return the departments the user administers (all of them for the desk)."""
    if not user.is_authenticated or not user.is_active:
        return Department.objects.none()
    if user.is_service_desk:
        return Department.objects.all()
    return departments_administered_by_admin(user_id=user.pk)


def departments_administered_by_admin(*, user_id):
    """Return the departments an active user, not the desk, administers (by id:
    prepared queries are built of ids)."""
    return Department.objects.filter(
        memberships__user=user_id, memberships__is_admin=True
    ).distinct()
