from django.http import Http404

from .models import Study


def studies_visible_to(*, user):
    """Return the studies a user sees as a department member (not via buckets)."""
    return Study.objects.filter(department__memberships__user=user)


def get_study_for_member(*, user, study_id):
    """Return a study of one of the user's departments, or raise 404."""
    try:
        return studies_visible_to(user=user).select_related("patient", "department").get(
            pk=study_id
        )
    except Study.DoesNotExist:
        raise Http404("No such study") from None
