from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _add_sqlite_unaccent(sender, connection, **kwargs):
    """Give SQLite the UNACCENT() that PostgreSQL's unaccent extension provides."""
    if connection.vendor == "sqlite":
        from .folding import fold_accents

        connection.connection.create_function(
            "UNACCENT", 1, fold_accents, deterministic=True
        )


class RecipientsConfig(AppConfig):
    name = "recipients"

    def ready(self):
        connection_created.connect(
            _add_sqlite_unaccent, dispatch_uid="recipients-unaccent"
        )
        from . import directory_version

        directory_version.connect()
