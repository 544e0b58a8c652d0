from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"

    def ready(self):
        from django.contrib.auth.signals import user_login_failed

        from .audit.record import record_login_failed

        user_login_failed.connect(
            record_login_failed, dispatch_uid="sharing.audit.login_failed"
        )

        from studies.signals import report_edited, study_downloaded

        from .audit.receivers import record_report_edited, record_study_downloaded

        report_edited.connect(
            record_report_edited, dispatch_uid="sharing.receivers.report_edited"
        )
        study_downloaded.connect(
            record_study_downloaded, dispatch_uid="sharing.receivers.study_downloaded"
        )
