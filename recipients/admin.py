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


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
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


@admin.register(UserGroup)
class UserGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "city", "is_public"]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(Favorite)
class FavoriteAdmin(admin.ModelAdmin):
    list_display = ["owner", "user", "group", "department", "created_at"]
    raw_id_fields = ["owner", "user", "group", "department"]
