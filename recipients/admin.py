from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import Department, Favorite, Membership, PhysicianNumber, User, UserGroup


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["department"]


class PhysicianNumberInline(admin.TabularInline):
    model = PhysicianNumber
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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


POLICY_FIELDS = [
    "default_validity_days",
    "max_validity_days",
    "allow_unlimited",
    "max_recipients",
    "language",
]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
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

    def _sees_all(self, request, action):
        user = request.user
        if not user.is_authenticated:
            return False
        return user.is_service_desk or user.has_perm(f"recipients.{action}_department")

    def _administered(self, request):
        if not request.user.is_authenticated:
            return Department.objects.none()
        return Department.objects.filter(
            memberships__user=request.user, memberships__is_admin=True
        )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self._sees_all(request, "view") or self._sees_all(request, "change"):
            return queryset
        return queryset.filter(pk__in=self._administered(request).values("pk"))

    def _administers(self, request, obj):
        administered = self._administered(request)
        if obj is None:
            return administered.exists()
        return administered.filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self._administers(
            request, None
        )

    def has_view_permission(self, request, obj=None):
        return (
            self._sees_all(request, "view")
            or self._sees_all(request, "change")
            or self._administers(request, obj)
        )

    def has_change_permission(self, request, obj=None):
        return self._sees_all(request, "change") or self._administers(request, obj)

    def has_add_permission(self, request):
        return self._sees_all(request, "add")

    def has_delete_permission(self, request, obj=None):
        return self._sees_all(request, "delete")

    def get_readonly_fields(self, request, obj=None):
        if self._sees_all(request, "change"):
            return []
        # A department admin sets the policy; the rest belongs to the service desk.
        return ["name", "code", "city", "postcode", "time_zone", "is_public"]


@admin.register(UserGroup)
class UserGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "city", "is_public"]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(Favorite)
class FavoriteAdmin(admin.ModelAdmin):
    list_display = ["owner", "user", "group", "department", "created_at"]
    raw_id_fields = ["owner", "user", "group", "department"]
