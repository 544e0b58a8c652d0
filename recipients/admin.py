from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from pacsshare.sms import mask_number

from .admin_scoping import (
    DepartmentScopedAdmin,
    ServiceDeskOnlyAdmin,
    administered_department_ids,
    is_service_desk,
)
from .models import Department, Favorite, Membership, PhysicianNumber, User, UserGroup


def mask_email(address):
    """Return an e-mail address with its local part hidden but its first letter."""
    if not address:
        return ""
    local, _at, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["department"]

    def get_queryset(self, request):
        # A department admin sees a member's memberships of their departments only.
        queryset = super().get_queryset(request)
        if is_service_desk(request.user):
            return queryset
        return queryset.filter(department__in=administered_department_ids(request))


class PhysicianNumberInline(admin.TabularInline):
    model = PhysicianNumber
    extra = 0


@admin.register(User)
class UserAdmin(DepartmentScopedAdmin, DjangoUserAdmin):
    """Users: the service desk sees and edits everyone; a department admin sees
    their departments' members, with a private e-mail and mobile masked."""

    department_path = "memberships__department"
    list_display = [
        "username",
        "first_name",
        "last_name",
        "email",
        "language",
        "is_active",
    ]
    search_fields = ["username", "first_name", "last_name", "email"]
    inlines = [MembershipInline, PhysicianNumberInline]
    fieldsets = DjangoUserAdmin.fieldsets + (
        (
            _("PACSshare"),
            {
                "fields": (
                    "title",
                    "speciality",
                    "city",
                    "postcode",
                    "language",
                    "email_public",
                    "mobile",
                    "mobile_public",
                )
            },
        ),
    )
    # What a department admin reads in place of the private contact fields.
    MASKED = {"email": "email_masked", "mobile": "mobile_masked"}

    def _masks(self, request):
        return not is_service_desk(request.user)

    @admin.display(description=_("E-mail"))
    def email_masked(self, user):
        return user.email if user.email_public else mask_email(user.email)

    @admin.display(description=_("mobile"))
    def mobile_masked(self, user):
        return user.mobile if user.mobile_public else mask_number(user.mobile)

    def get_list_display(self, request):
        fields = super().get_list_display(request)
        if not self._masks(request):
            return fields
        return [self.MASKED.get(f, f) for f in fields]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._masks(request) or obj is None:
            return fieldsets
        return [
            (name, {**opts, "fields": [self.MASKED.get(f, f) for f in opts["fields"]]})
            for name, opts in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self._masks(request):
            readonly += list(self.MASKED.values())
        return readonly

    def get_search_fields(self, request):
        if self._masks(request):
            # Finding a member by a private e-mail would disclose it.
            return ["username", "first_name", "last_name"]
        return super().get_search_fields(request)


POLICY_FIELDS = [
    "default_validity_days",
    "max_validity_days",
    "allow_unlimited",
    "max_recipients",
    "language",
]


@admin.register(Department)
class DepartmentAdmin(DepartmentScopedAdmin):
    """Departments: the service desk edits all; a department admin edits only the
    sharing policy of their own departments."""

    list_display = [
        "name",
        "code",
        "city",
        "default_validity_days",
        "max_validity_days",
        "allow_unlimited",
        "max_recipients",
    ]
    search_fields = ["name", "code", "city"]
    fieldsets = [
        (
            None,
            {"fields": ["name", "code", "city", "postcode", "time_zone", "is_public"]},
        ),
        (_("Sharing policy"), {"fields": POLICY_FIELDS}),
    ]

    department_path = "id"

    # The service desk edits all departments; an admin edits their own policy.
    def has_add_permission(self, request):
        return is_service_desk(request.user)

    def has_change_permission(self, request, obj=None):
        return self.administers(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_service_desk(request.user)

    def get_readonly_fields(self, request, obj=None):
        if is_service_desk(request.user):
            return []
        # A department admin sets the policy; the rest belongs to the service desk.
        return ["name", "code", "city", "postcode", "time_zone", "is_public"]


@admin.register(UserGroup)
class UserGroupAdmin(ServiceDeskOnlyAdmin):
    """Groups belong to no department: the service desk's alone."""

    list_display = ["name", "city", "is_public"]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(Favorite)
class FavoriteAdmin(ServiceDeskOnlyAdmin):
    """A user's own favorites: the service desk's alone."""

    list_display = ["owner", "user", "group", "department", "created_at"]
    raw_id_fields = ["owner", "user", "group", "department"]
