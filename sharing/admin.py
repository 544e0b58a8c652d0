"""Django admin for department admins and the service desk.

Department admins see and act on what their departments sent, nothing else; the
service desk sees every department. Unlock, revoke and retry call the same
services as the Status Forwarding page. The access log is read-only for all.
"""

import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from pacsshare.sms import mask_number
from recipients.admin_scoping import AdministeredDepartmentFilter
from recipients.admin_scoping import DepartmentScopedAdmin as BaseDepartmentScopedAdmin
from studies.dicomnet.admin import LeasedTaskStatusMixin

from .audit.export import AUDIT_EVENT_FIELDS, audit_csv_response
from .models import (
    AuditEvent,
    Bucket,
    BucketOpening,
    BucketUnlock,
    Label,
    Notification,
    PacsTransfer,
    Share,
)
from .status.guard import (
    SenderAction,
    departments_administered_by,
    get_bucket_for_sender,
)
from .status.selectors import BucketStatus, bucket_status, expired_q, expiry_clock
from .status.services import (
    BucketAlreadyRevoked,
    BucketNotLocked,
    bucket_revoke,
    bucket_unlock,
    notification_retry,
)


class DepartmentScopedAdmin(BaseDepartmentScopedAdmin):
    """Limit a model's admin to the departments the user administers, read-only.

    `department_path` is the lookup from the model to the sending department.
    What a sender did is not edited here, by the service desk neither; the
    actions (unlock, revoke, retry) call the same services as Status Forwarding.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ExpiredFilter(admin.SimpleListFilter):
    title = _("expired")
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        expired = expired_q(**expiry_clock())
        if self.value() == "yes":
            return queryset.filter(expired)
        if self.value() == "no":
            return queryset.exclude(expired)
        return queryset


class LockedFilter(admin.SimpleListFilter):
    title = _("locked")
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(locked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(locked_at__isnull=True)
        return queryset


class RevokedFilter(admin.SimpleListFilter):
    title = _("revoked")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        revoked = Q(revoked_at__isnull=False) | Q(share__revoked_at__isnull=False)
        if self.value() == "yes":
            return queryset.filter(revoked)
        if self.value() == "no":
            return queryset.exclude(revoked)
        return queryset


class BucketDepartmentFilter(AdministeredDepartmentFilter):
    department_path = "share__source_department"


class ShareDepartmentFilter(AdministeredDepartmentFilter):
    department_path = "source_department"


class EventDepartmentFilter(AdministeredDepartmentFilter):
    department_path = "department"


class BucketUnlockInline(admin.TabularInline):
    model = BucketUnlock
    extra = 0
    can_delete = False
    fields = ["unlocked_at", "unlocked_by", "failed_attempts"]
    readonly_fields = fields
    verbose_name_plural = _("unlock history")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Bucket)
class BucketAdmin(DepartmentScopedAdmin):
    department_path = "share__source_department"
    list_display = [
        "recipient_display",
        "status_display",
        "sender",
        "department",
        "shared_on",
        "valid_till",
    ]
    list_display_links = ["recipient_display"]
    list_filter = [
        LockedFilter,
        ExpiredFilter,
        RevokedFilter,
        BucketDepartmentFilter,
    ]
    search_fields = [
        "recipient_user__first_name",
        "recipient_user__last_name",
        "recipient_user__username",
        "recipient_group__name",
        "recipient_department__name",
        "share__sender__last_name",
        "share__studies__patient__family_name",
        "share__studies__patient__patient_id",
    ]
    list_select_related = [
        "share__sender",
        "share__source_department",
        "recipient_user",
        "recipient_group",
        "recipient_department",
    ]
    actions = ["unlock_selected", "revoke_selected"]
    inlines = [BucketUnlockInline]
    readonly_fields = [
        "share",
        "recipient_user",
        "recipient_group",
        "recipient_department",
        "require_otp",
        "send_mail",
        "failed_otp_attempts",
        "locked_at",
        "revoked_at",
        "revoked_by",
        "created_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": readonly_fields,
                "description": _(
                    "To unlock or revoke this bucket, tick it in the bucket list and "
                    "choose “Unlock selected buckets” or “Revoke selected buckets”, "
                    "or use the buttons on the Status Forwarding page."
                ),
            },
        )
    ]

    @admin.display(description=_("recipient"))
    def recipient_display(self, obj):
        return obj.recipient

    @admin.display(description=_("shared by"), ordering="share__sender__last_name")
    def sender(self, obj):
        return obj.share.sender

    @admin.display(description=_("department"), ordering="share__source_department")
    def department(self, obj):
        return obj.share.source_department

    @admin.display(description=_("shared on"), ordering="share__created_at")
    def shared_on(self, obj):
        return obj.share.created_at

    @admin.display(description=_("valid till"), ordering="share__valid_until")
    def valid_till(self, obj):
        return obj.share.valid_until or _("unlimited")

    @admin.display(description=_("status"))
    def status_display(self, obj):
        status = bucket_status(obj)
        label = dict(BucketStatus.choices)[status]
        if status == BucketStatus.LOCKED or (
            status == BucketStatus.NOT_OPENED and obj.failed_otp_attempts
        ):
            return ngettext(
                "%(status)s (%(count)d wrong code)",
                "%(status)s (%(count)d wrong codes)",
                obj.failed_otp_attempts,
            ) % {"status": label, "count": obj.failed_otp_attempts}
        return label

    def get_queryset(self, request):
        first_opening = BucketOpening.objects.filter(bucket=OuterRef("pk")).order_by(
            "first_opened_at"
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                first_opened_at=Subquery(first_opening.values("first_opened_at")[:1])
            )
        )

    def has_unlock_permission(self, request):
        return self.administers(request)

    def has_revoke_permission(self, request):
        return self.administers(request)

    @admin.action(permissions=["unlock"], description=_("Unlock selected buckets"))
    def unlock_selected(self, request, queryset):
        self._apply(
            request,
            queryset,
            action=SenderAction.UNLOCK,
            service=bucket_unlock,
            refusals=(BucketNotLocked,),
            done_message=lambda n: ngettext(
                "%(count)d bucket unlocked.", "%(count)d buckets unlocked.", n
            ),
            skipped_message=lambda n: ngettext(
                "%(count)d bucket was not locked and was left as it was.",
                "%(count)d buckets were not locked and were left as they were.",
                n,
            ),
        )

    @admin.action(permissions=["revoke"], description=_("Revoke selected buckets"))
    def revoke_selected(self, request, queryset):
        self._apply(
            request,
            queryset,
            action=SenderAction.REVOKE,
            service=bucket_revoke,
            refusals=(BucketAlreadyRevoked,),
            done_message=lambda n: ngettext(
                "%(count)d bucket revoked.", "%(count)d buckets revoked.", n
            ),
            skipped_message=lambda n: ngettext(
                "%(count)d bucket was already revoked.",
                "%(count)d buckets were already revoked.",
                n,
            ),
        )

    def _apply(
        self,
        request,
        queryset,
        *,
        action,
        service,
        refusals,
        done_message,
        skipped_message,
    ):
        """Run an unlock or revoke service on each bucket the user may act on."""
        done = skipped = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                bucket = get_bucket_for_sender(
                    user=request.user, bucket_id=pk, action=action
                )
                service(bucket=bucket, by=request.user, request=request)
            except (Http404, PermissionDenied, *refusals):
                skipped += 1
            else:
                done += 1
        if done:
            self.message_user(
                request, done_message(done) % {"count": done}, messages.SUCCESS
            )
        if skipped:
            self.message_user(
                request, skipped_message(skipped) % {"count": skipped}, messages.WARNING
            )


class BucketInline(admin.TabularInline):
    model = Bucket
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "recipient_user",
        "recipient_group",
        "recipient_department",
        "require_otp",
        "send_mail",
        "failed_otp_attempts",
        "locked_at",
        "revoked_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Share)
class ShareAdmin(DepartmentScopedAdmin):
    """Read-mostly: a share is what a sender did; admins look, and revoke buckets."""

    department_path = "source_department"
    list_display = [
        "id",
        "sender",
        "source_department",
        "created_at",
        "valid_until",
        "access",
        "urgent",
        "anonymize",
        "revoked_at",
    ]
    list_filter = [ShareDepartmentFilter, "access", "urgent", "anonymize"]
    search_fields = [
        "sender__first_name",
        "sender__last_name",
        "studies__patient__family_name",
        "studies__patient__patient_id",
    ]
    list_select_related = ["sender", "source_department"]
    date_hierarchy = "created_at"
    inlines = [BucketInline]
    fields = [
        "sender",
        "source_department",
        "studies",
        "access",
        "reason",
        "language",
        "valid_until",
        "patient_agreed_at",
        "label",
        "label_scope",
        "urgent",
        "anonymize",
        "allow_further_sharing",
        "message",
        "parent_bucket",
        "revoked_at",
        "created_at",
    ]
    readonly_fields = fields


class NotificationStatusDepartmentFilter(AdministeredDepartmentFilter):
    department_path = "bucket__share__source_department"


@admin.register(Notification)
class NotificationAdmin(DepartmentScopedAdmin):
    department_path = "bucket__share__source_department"
    list_select_related = ["user"]
    list_display = [
        "id",
        "kind",
        "channel",
        "address",
        "delivery_status",
        "attempts",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "kind", "channel", NotificationStatusDepartmentFilter]
    search_fields = ["subject"]
    actions = ["retry_selected"]
    fields = [
        "kind",
        "channel",
        "bucket",
        "user",
        "address",
        "language",
        "subject",
        "status",
        "attempts",
        "leased_until",
        "provider_id",
        "error",
        "created_at",
        "sent_at",
    ]
    readonly_fields = fields

    def has_retry_permission(self, request):
        return self.administers(request)

    @admin.display(description=_("to"))
    def address(self, notification):
        """Show where it went without disclosing a mobile or a private e-mail."""
        address = notification.to_address
        if notification.channel == Notification.Channel.SMS:
            return mask_number(address)
        user = notification.user
        if user is not None and user.email_public:
            return address
        local, _at, domain = address.partition("@")
        return f"{local[:1]}…@{domain}"

    @admin.display(description=_("status"), ordering="status")
    def delivery_status(self, notification):
        """Show the status, telling a claim whose worker died from a live one."""
        if notification.is_stalled:
            return _("sending (stalled)")
        return notification.get_status_display()

    @admin.action(
        permissions=["retry"],
        description=_("Retry selected failed or stalled messages"),
    )
    def retry_selected(self, request, queryset):
        queued = skipped = 0
        for notification in queryset:
            if notification_retry(notification=notification):
                queued += 1
            else:
                skipped += 1
        if queued:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message queued again.",
                    "%(count)d messages queued again.",
                    queued,
                )
                % {"count": queued},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was neither failed nor stalled and was left "
                    "as it was.",
                    "%(count)d messages were neither failed nor stalled and were "
                    "left as they were.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


@admin.register(Label)
class LabelAdmin(DepartmentScopedAdmin):
    """Labels are edited by the admins of their department."""

    list_display = ["name", "color", "department"]
    list_filter = [EventDepartmentFilter]
    search_fields = ["name"]

    def has_add_permission(self, request):
        return self.administers(request)

    def has_change_permission(self, request, obj=None):
        return self.administers(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.administers(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "department":
            kwargs["queryset"] = departments_administered_by(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(AuditEvent)
class AuditEventAdmin(DepartmentScopedAdmin):
    """The access log: read-only for everyone, the superuser included."""

    list_display = [
        "created_at",
        "action",
        "actor",
        "department",
        "share_id",
        "bucket_id",
        "ip_address",
    ]
    list_filter = ["action", EventDepartmentFilter]
    search_fields = ["actor__username", "actor__last_name", "study_uids", "ip_address"]
    list_select_related = ["actor", "department"]
    date_hierarchy = "created_at"
    actions = ["export_csv"]
    fields = AUDIT_EVENT_FIELDS
    readonly_fields = fields

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Export selected events as CSV"))
    def export_csv(self, request, queryset):
        events = queryset.select_related("actor", "department").order_by(
            "created_at", "id"
        )
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        return audit_csv_response(events=events, filename=f"audit-{stamp}.csv")


class TransferDepartmentFilter(AdministeredDepartmentFilter):
    department_path = "bucket__share__source_department"


@admin.register(PacsTransfer)
class PacsTransferAdmin(LeasedTaskStatusMixin, DepartmentScopedAdmin):
    """Send to my PACS, read-only, seen by the sending department like its log."""

    department_path = "bucket__share__source_department"
    list_display = [
        "created_at",
        "bucket",
        "user",
        "ae_title",
        "host",
        "port",
        "task_status",
        "total",
        "sent",
        "failed",
    ]
    list_filter = [TransferDepartmentFilter, "status"]
    list_select_related = ["user"]
    fields = [*list_display, "error", "finished_at"]
    readonly_fields = fields
    raw_id_fields = ["bucket"]
