from django.db import migrations


def create_overview_index(apps, schema_editor):
    # Newest first with undated studies last. SQLite sorts NULL last in DESC on
    # its own and refuses NULLS LAST in an index; PostgreSQL needs it spelled out.
    nulls_last = " NULLS LAST" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        "CREATE INDEX study_overview_order_idx ON studies_study "
        f"(department_id, study_date DESC{nulls_last}, "
        f"study_time DESC{nulls_last}, id DESC)"
    )


def drop_overview_index(apps, schema_editor):
    schema_editor.execute("DROP INDEX study_overview_order_idx")


class Migration(migrations.Migration):
    dependencies = [("studies", "0001_initial")]

    operations = [
        migrations.RemoveIndex(model_name="study", name="study_department_date_idx"),
        migrations.RunPython(create_overview_index, drop_overview_index),
    ]
