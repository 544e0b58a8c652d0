"""Department boundaries in the Django admin, shared by every app's admin.

Every model a department admin can list belongs to a department through
`department_path`; they see their departments' objects only, and the service
desk (a superuser or the `service desk` group) sees everything. Django's model
permissions are not consulted for seeing: the department memberships are the
permissions here. Changing is the service desk's, unless a model admin says
otherwise. Models that belong to no department are the service desk's alone.

This lives in `recipients` (the bottom of the layout) so that the admins of
`recipients`, `studies` and `sharing` all build on it.
"""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.utils.translation import gettext_lazy as _

from .roles import departments_administered_by, is_service_desk


def administered_department_ids(request):
    """Return the ids of the departments the request's user administers (cached)."""
    if not hasattr(request, "_administered_department_ids"):
        request._administered_department_ids = set(
            departments_administered_by(user=request.user).values_list("pk", flat=True)
        )
    return request._administered_department_ids


class BoundedChangeList(ChangeList):
    """Django's changelist, answering an out-of-range date (?created_at__year=
    999999999999) with its "bad parameters" page rather than a server error."""

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except OverflowError as error:
            raise IncorrectLookupParameters(error) from error


class ServiceDeskOnlyAdmin(admin.ModelAdmin):
    """A model that belongs to no department: the service desk's alone."""

    def get_changelist(self, request, **kwargs):
        return BoundedChangeList

    def _desk(self, request):
        return is_service_desk(request.user)

    def has_module_permission(self, request):
        return self._desk(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._desk(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._desk(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._desk(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._desk(request) and super().has_delete_permission(request, obj)


class DepartmentScopedAdmin(admin.ModelAdmin):
    """Limit a model's admin to the departments the user administers.

    `department_path` is the lookup from the model to its department. When it
    crosses a many-valued relation (a user's memberships), the list is made
    distinct. Anyone who administers no department sees nothing; the service
    desk sees all, and only the service desk adds, changes or deletes (with
    Django's model permissions on top).
    """

    department_path = "department"

    def get_changelist(self, request, **kwargs):
        return BoundedChangeList

    def administered_ids(self, request):
        return administered_department_ids(request)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_service_desk(request.user):
            return queryset
        scoped = queryset.filter(
            **{f"{self.department_path}__in": self.administered_ids(request)}
        )
        if self._crosses_many(queryset.model):
            # Keep the annotations of subclasses; a subquery keeps rows single.
            return queryset.filter(pk__in=scoped.values("pk"))
        return scoped

    def _crosses_many(self, model):
        for part in self.department_path.split("__"):
            field = model._meta.get_field(part)
            if field.many_to_many or field.one_to_many:
                return True
            model = field.related_model
        return False

    def administers(self, request, obj=None):
        if is_service_desk(request.user):
            return True
        if obj is None:
            return bool(self.administered_ids(request))
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return self.administers(request)

    def has_view_permission(self, request, obj=None):
        return self.administers(request, obj)

    def _desk_may(self, request, granted):
        return is_service_desk(request.user) and granted

    def has_add_permission(self, request):
        return self._desk_may(request, super().has_add_permission(request))

    def has_change_permission(self, request, obj=None):
        return self._desk_may(request, super().has_change_permission(request, obj))

    def has_delete_permission(self, request, obj=None):
        return self._desk_may(request, super().has_delete_permission(request, obj))


class AdministeredDepartmentFilter(admin.SimpleListFilter):
    """The object's department, offering only the departments the user administers.

    A value that names no department the user administers is refused as a bad
    lookup (the admin's "bad parameters" page), never a server error.
    """

    title = _("department")
    parameter_name = "department"
    department_path = "department"

    def lookups(self, request, model_admin):
        return [
            (str(d.pk), d.name)
            for d in departments_administered_by(user=request.user).order_by("name")
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isascii() or not value.isdigit():
            raise IncorrectLookupParameters(value)
        department_id = int(value)
        if department_id not in administered_department_ids(request):
            raise IncorrectLookupParameters(value)
        return queryset.filter(**{f"{self.department_path}__pk": department_id})
