"""The Django admin site of PACSshare: open to staff, the service desk and
department admins; a signed-in user who is none of these gets 403 on every URL.
Each model admin limits what it shows to the user's departments
(recipients/admin_scoping.py).
"""

from functools import update_wrapper

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _

from recipients.admin_scoping import DepartmentScopedAdmin, ServiceDeskOnlyAdmin


def may_use_admin(user):
    """Return whether the user may enter the admin at all (the models decide more)."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_staff or user.is_service_desk:
        return True
    return user.memberships.filter(is_admin=True).exists()


class PacsAdminAuthenticationForm(AdminAuthenticationForm):
    """Let department admins and the service desk in, not only staff."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": _(
            "Please enter the correct %(username)s and password for an "
            "administrator account. Note that both fields may be case-sensitive."
        ),
    }

    def confirm_login_allowed(self, user):
        if not may_use_admin(user):
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class PacsAdminSite(admin.AdminSite):
    site_header = _("PACSshare administration")
    site_title = _("PACSshare administration")
    index_title = _("Departments, shares and the access log")
    login_form = PacsAdminAuthenticationForm

    def has_permission(self, request):
        return may_use_admin(request.user)

    def register(self, model_or_iterable, admin_class=None, **options):
        """Register a model; one that belongs to no department (Django's groups,
        django-axes' logs) is the service desk's alone."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, DepartmentScopedAdmin | ServiceDeskOnlyAdmin):
            admin_class = type(
                admin_class.__name__,
                (ServiceDeskOnlyAdmin, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def _refuse_signed_in_outsiders(self, request):
        # Django would send a signed-in non-admin to the admin login page; a
        # plain user has no business there, so say so plainly.
        if request.user.is_authenticated and not self.has_permission(request):
            raise PermissionDenied

    def admin_view(self, view, cacheable=False):
        wrapped = super().admin_view(view, cacheable=cacheable)

        def inner(request, *args, **kwargs):
            self._refuse_signed_in_outsiders(request)
            return wrapped(request, *args, **kwargs)

        return update_wrapper(inner, wrapped)

    def login(self, request, extra_context=None):
        self._refuse_signed_in_outsiders(request)
        return super().login(request, extra_context)

    def catch_all_view(self, request, url):
        self._refuse_signed_in_outsiders(request)
        return super().catch_all_view(request, url)
