"""The DICOMweb source's password sealed at rest (pacsshare.secret_box)."""

from django.db import migrations

import pacsshare.secret_box


def seal_passwords(apps, schema_editor):
    # Raw SQL: the field's own conversion would read a clear password as one
    # no key opens.
    connection = schema_editor.connection
    table = connection.ops.quote_name("studies_dicomwebsource")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, password FROM {table}")
        rows = cursor.fetchall()
        for pk, password in rows:
            if password and not pacsshare.secret_box.is_sealed(password):
                cursor.execute(
                    f"UPDATE {table} SET password = %s WHERE id = %s",
                    [pacsshare.secret_box.seal(password), pk],
                )


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0005_dicomweb_import"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dicomwebsource",
            name="password",
            field=pacsshare.secret_box.SealedCharField(
                blank=True, max_length=1000, verbose_name="password"
            ),
        ),
        migrations.RunPython(seal_passwords, migrations.RunPython.noop),
    ]
