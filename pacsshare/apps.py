from django.contrib.admin.apps import AdminConfig


class PacsAdminConfig(AdminConfig):
    """django.contrib.admin with PACSshare's admin site as the default site."""

    default_site = "pacsshare.admin_site.PacsAdminSite"
