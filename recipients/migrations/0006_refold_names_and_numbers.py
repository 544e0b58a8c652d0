"""Refill the folded columns after two folding changes (issue 14, item 9).

Name particles are joined to the next word in users' folded names ("De Smet"
-> "desmet"), and a physician number's scheme name in front of it ("UCGN
2019-0457") is left out of number_digits. Only the column values change; the
indexes stay as they are.
"""

from django.db import migrations

from recipients.folding import fold_person_name
from recipients.models import scheme_number_digits


def refold(apps, schema_editor):
    User = apps.get_model("recipients", "User")
    stale = []
    for user in User.objects.only(
        "first_name", "last_name", "search_name", "search_name_rev"
    ).iterator():
        first = fold_person_name(user.first_name)
        last = fold_person_name(user.last_name)
        name = " ".join(p for p in (first, last) if p)
        rev = " ".join(p for p in (last, first) if p)
        if (name, rev) != (user.search_name, user.search_name_rev):
            user.search_name, user.search_name_rev = name, rev
            stale.append(user)
    User.objects.bulk_update(stale, ["search_name", "search_name_rev"], batch_size=500)

    PhysicianNumber = apps.get_model("recipients", "PhysicianNumber")
    taken = set(PhysicianNumber.objects.values_list("scheme", "number_digits"))
    for row in PhysicianNumber.objects.iterator():
        digits = scheme_number_digits(row.scheme, row.number)
        # A row whose unprefixed twin already exists keeps its old digits.
        if digits != row.number_digits and (row.scheme, digits) not in taken:
            taken.discard((row.scheme, row.number_digits))
            taken.add((row.scheme, digits))
            row.number_digits = digits
            row.save(update_fields=["number_digits"])


class Migration(migrations.Migration):
    dependencies = [
        ("recipients", "0005_department_language"),
    ]

    operations = [migrations.RunPython(refold, migrations.RunPython.noop)]
