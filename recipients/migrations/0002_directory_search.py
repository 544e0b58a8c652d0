"""Folded search columns, their indexes, and pg_trgm/unaccent on PostgreSQL.

The PostgreSQL-only steps (extensions, "C" collation of the folded name columns,
trigram GIN index) are skipped on other databases, where the same queries run
without them, only slower.
"""

import django.db.models.functions.text
from django.contrib.postgres.operations import TrigramExtension, UnaccentExtension
from django.db import migrations, models

from recipients.folding import fold, normalize_mobile


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that runs on PostgreSQL only."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def fill_search_columns(apps, schema_editor):
    User = apps.get_model("recipients", "User")
    for user in User.objects.only("first_name", "last_name", "mobile").iterator():
        first, last = fold(user.first_name), fold(user.last_name)
        user.search_name = " ".join(p for p in (first, last) if p)
        user.search_name_rev = " ".join(p for p in (last, first) if p)
        user.search_mobile = normalize_mobile(user.mobile)
        user.save(update_fields=["search_name", "search_name_rev", "search_mobile"])
    for model_name in ("Department", "UserGroup"):
        model = apps.get_model("recipients", model_name)
        for row in model.objects.only("name").iterator():
            row.search_name = fold(row.name)
            row.save(update_fields=["search_name"])


# Byte order ("C") on the folded columns: one btree then serves both
# LIKE 'prefix%' and ORDER BY, so a prefix query stops after LIMIT rows.
C_COLLATION = [
    (
        'ALTER TABLE recipients_user ALTER COLUMN search_name TYPE varchar(301) COLLATE "C"',
        "ALTER TABLE recipients_user ALTER COLUMN search_name TYPE varchar(301)",
    ),
    (
        'ALTER TABLE recipients_user ALTER COLUMN search_name_rev TYPE varchar(301) COLLATE "C"',
        "ALTER TABLE recipients_user ALTER COLUMN search_name_rev TYPE varchar(301)",
    ),
    (
        'ALTER TABLE recipients_usergroup ALTER COLUMN search_name TYPE varchar(200) COLLATE "C"',
        "ALTER TABLE recipients_usergroup ALTER COLUMN search_name TYPE varchar(200)",
    ),
    (
        'ALTER TABLE recipients_department ALTER COLUMN search_name TYPE varchar(200) COLLATE "C"',
        "ALTER TABLE recipients_department ALTER COLUMN search_name TYPE varchar(200)",
    ),
]


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('recipients', '0001_initial'),
    ]

    operations = [
        TrigramExtension(),
        UnaccentExtension(),
        migrations.AddField(
            model_name='department',
            name='search_name',
            field=models.CharField(default='', editable=False, max_length=200),
        ),
        migrations.AddField(
            model_name='user',
            name='search_mobile',
            field=models.CharField(default='', editable=False, max_length=20),
        ),
        migrations.AddField(
            model_name='user',
            name='search_name',
            field=models.CharField(default='', editable=False, max_length=301),
        ),
        migrations.AddField(
            model_name='user',
            name='search_name_rev',
            field=models.CharField(default='', editable=False, max_length=301),
        ),
        migrations.AddField(
            model_name='usergroup',
            name='search_name',
            field=models.CharField(default='', editable=False, max_length=200),
        ),
        migrations.RunPython(fill_search_columns, migrations.RunPython.noop),
        *[PostgresOnlySQL(sql, reverse) for sql, reverse in C_COLLATION],
        migrations.AddIndex(
            model_name='user',
            index=models.Index(condition=models.Q(('is_active', True)), fields=['search_name'], name='user_search_name_idx'),
        ),
        migrations.AddIndex(
            model_name='user',
            index=models.Index(condition=models.Q(('is_active', True)), fields=['search_name_rev'], name='user_search_name_rev_idx'),
        ),
        migrations.AddIndex(
            model_name='user',
            index=models.Index(condition=models.Q(('mobile_public', True)), fields=['search_mobile'], name='user_public_mobile_idx'),
        ),
        migrations.AddIndex(
            model_name='user',
            index=models.Index(django.db.models.functions.text.Lower('email'), condition=models.Q(('email_public', True)), name='user_public_email_idx'),
        ),
        # Substring matches ("the rest") of three letters or more.
        PostgresOnlySQL(
            "CREATE INDEX user_search_name_trgm ON recipients_user "
            "USING gin (search_name gin_trgm_ops) WHERE is_active",
            "DROP INDEX IF EXISTS user_search_name_trgm",
        ),
    ]
