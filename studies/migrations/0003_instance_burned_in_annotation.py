from django.db import migrations, models


def read_flags(apps, schema_editor):
    """Fill the flag of instances imported before it was stored."""
    import pydicom

    Instance = apps.get_model("studies", "Instance")
    for instance in Instance.objects.exclude(file="").iterator():
        try:
            with instance.file.open("rb") as handle:
                ds = pydicom.dcmread(
                    handle, stop_before_pixels=True, force=True,
                    specific_tags=["BurnedInAnnotation"],
                )
            flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
        except Exception:  # noqa: BLE001 - an unreadable file keeps ""
            continue
        if flag in ("YES", "NO"):
            Instance.objects.filter(pk=instance.pk).update(burned_in_annotation=flag)


class Migration(migrations.Migration):
    dependencies = [("studies", "0002_overview_order_index")]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="burned_in_annotation",
            field=models.CharField(
                blank=True, max_length=3, verbose_name="burned-in annotation"
            ),
        ),
        migrations.RunPython(read_flags, migrations.RunPython.noop),
    ]
