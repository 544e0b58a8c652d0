"""Studies in the Django admin: each belongs to its department, and a department
admin sees their departments' patients, studies, series, instances and reports
only (recipients.admin_scoping); the service desk sees and edits all."""

from django.contrib import admin

from recipients.admin_scoping import AdministeredDepartmentFilter, DepartmentScopedAdmin

from .models import Instance, Patient, Report, ReportRevision, Series, Study


@admin.register(Patient)
class PatientAdmin(DepartmentScopedAdmin):
    list_display = [
        "patient_id",
        "family_name",
        "given_name",
        "birth_date",
        "department",
    ]
    list_filter = [AdministeredDepartmentFilter]
    search_fields = ["patient_id", "family_name", "given_name"]


class SeriesInline(admin.TabularInline):
    model = Series
    extra = 0
    fields = ["series_number", "modality", "description", "series_instance_uid"]
    readonly_fields = fields
    show_change_link = True


@admin.register(Study)
class StudyAdmin(DepartmentScopedAdmin):
    list_display = ["study_date", "patient", "description", "modalities", "department"]
    list_filter = [AdministeredDepartmentFilter, "modalities"]
    search_fields = ["patient__family_name", "patient__patient_id", "description"]
    date_hierarchy = "study_date"
    raw_id_fields = ["patient"]
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(DepartmentScopedAdmin):
    department_path = "study__department"
    list_display = ["study", "series_number", "modality", "description"]
    raw_id_fields = ["study"]


@admin.register(Instance)
class InstanceAdmin(DepartmentScopedAdmin):
    department_path = "series__study__department"
    list_display = ["sop_instance_uid", "series", "instance_number", "number_of_frames"]
    raw_id_fields = ["series"]


class ReportRevisionInline(admin.TabularInline):
    model = ReportRevision
    extra = 0
    readonly_fields = ["text", "author", "created_at"]
    can_delete = False


@admin.register(Report)
class ReportAdmin(DepartmentScopedAdmin):
    department_path = "study__department"
    list_display = ["study", "updated_at", "updated_by"]
    raw_id_fields = ["study", "updated_by"]
    inlines = [ReportRevisionInline]


# DICOM on the network: the source and destination (studies/dicomnet/admin.py).
from .dicomnet import admin as _dicomnet_admin  # noqa: E402, F401
