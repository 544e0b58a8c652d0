"""The department's DICOMweb source and DICOM destination in the Django admin.

Scoped like every admin (recipients.admin_scoping): a department admin sees and
edits their departments' source and destination only, the service desk all.
The source's password is typed into a password input that never shows it back:
left empty, the stored one is kept; it is never listed nor logged.
"""

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from recipients.admin_scoping import AdministeredDepartmentFilter, DepartmentScopedAdmin
from recipients.roles import departments_administered_by, is_service_desk

from ..models import DicomDestination, DicomWebImport, DicomWebSource


class DicomWebSourceForm(forms.ModelForm):
    base_url = forms.URLField(
        label=_("DICOMweb base URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_(
            "The DICOMweb root of the PACS, for example "
            "https://pacs.example.org/dicom-web (QIDO-RS and WADO-RS below it)."
        ),
    )
    password = forms.CharField(
        label=_("password"),
        required=False,
        strip=False,
        max_length=255,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Never shown again. Leave empty to keep the stored password."),
    )
    clear_password = forms.BooleanField(
        label=_("remove the stored password"), required=False
    )

    class Meta:
        model = DicomWebSource
        fields = ["department", "base_url", "username", "password"]

    def clean_base_url(self):
        url = self.cleaned_data["base_url"].strip()
        parts = urlsplit(url)
        if parts.username or parts.password:
            # Credentials in a URL end up in logs; they have their own fields.
            raise forms.ValidationError(
                _("Put the user name and password in their fields, not in the URL.")
            )
        if parts.query or parts.fragment:
            raise forms.ValidationError(_("The URL takes no query or fragment."))
        return url.rstrip("/")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_password"):
            cleaned["password"] = ""
        elif not cleaned.get("password") and self.instance.pk:
            cleaned["password"] = self.instance.password
        return cleaned


class DicomDestinationForm(forms.ModelForm):
    class Meta:
        model = DicomDestination
        fields = ["department", "ae_title", "host", "port"]

    def clean_ae_title(self):
        # PS3.5: at most 16 characters, no backslash or control character.
        value = self.cleaned_data["ae_title"].strip()
        if not value or "\\" in value or not value.isprintable():
            raise forms.ValidationError(_("Not a valid AE title."))
        return value

    def clean_port(self):
        port = self.cleaned_data["port"]
        if not 1 <= port <= 65535:
            raise forms.ValidationError(_("A port is between 1 and 65535."))
        return port


class _DepartmentAdminEdits(DepartmentScopedAdmin):
    """Edited by the admins of its department (like labels), the service desk all."""

    def has_add_permission(self, request):
        return self.administers(request)

    def has_change_permission(self, request, obj=None):
        return self.administers(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.administers(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "department" and not is_service_desk(request.user):
            kwargs["queryset"] = departments_administered_by(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(DicomWebSource)
class DicomWebSourceAdmin(_DepartmentAdminEdits):
    form = DicomWebSourceForm
    list_display = ["department", "base_url", "username", "has_password"]
    list_filter = [AdministeredDepartmentFilter]
    list_select_related = ["department"]
    fields = ["department", "base_url", "username", "password", "clear_password"]

    @admin.display(boolean=True, description=_("password set"))
    def has_password(self, obj):
        return bool(obj.password)


@admin.register(DicomDestination)
class DicomDestinationAdmin(_DepartmentAdminEdits):
    form = DicomDestinationForm
    list_display = ["department", "ae_title", "host", "port"]
    list_filter = [AdministeredDepartmentFilter]
    list_select_related = ["department"]
    fields = ["department", "ae_title", "host", "port"]


class LeasedTaskStatusMixin:
    """A status column that tells a task its worker left midway (interrupted,
    to be resumed by the relay) from one that is running."""

    @admin.display(description=_("status"), ordering="status")
    def task_status(self, row):
        if row.is_interrupted:
            return _("interrupted (resuming)")
        return row.get_status_display()


@admin.register(DicomWebImport)
class DicomWebImportAdmin(LeasedTaskStatusMixin, DepartmentScopedAdmin):
    """Bring-ins from the source: read-only, for following up failures."""

    list_display = [
        "created_at",
        "department",
        "patient_name",
        "description",
        "task_status",
        "total",
        "imported",
        "already_present",
        "failed",
    ]
    list_filter = [AdministeredDepartmentFilter, "status"]
    list_select_related = ["department"]
    fields = [
        "department",
        "user",
        "study_instance_uid",
        "patient_name",
        "description",
        "study_date",
        "study",
        "task_status",
        "total",
        "imported",
        "already_present",
        "failed",
        "error",
        "reasons",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
