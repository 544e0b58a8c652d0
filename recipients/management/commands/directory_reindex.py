"""Recompute the folded search columns of users, groups and departments."""

from django.core.management.base import BaseCommand
from django.db import transaction

from recipients.models import SEARCH_FIELDS, Department, User, UserGroup

BATCH = 2000


class Command(BaseCommand):
    help = (
        "Recompute the directory's folded search columns, after rows were written "
        "without save() (bulk_create, update(), raw SQL)."
    )

    def handle(self, *args, **options):
        changed = 0
        users = User.objects.only("first_name", "last_name", "mobile", *SEARCH_FIELDS)
        batch = []
        for user in users.iterator(chunk_size=BATCH):
            before = tuple(getattr(user, f) for f in SEARCH_FIELDS)
            user.refresh_search_fields()
            if tuple(getattr(user, f) for f in SEARCH_FIELDS) != before:
                batch.append(user)
            if len(batch) >= BATCH:
                changed += self._save(User, batch, SEARCH_FIELDS)
                batch = []
        changed += self._save(User, batch, SEARCH_FIELDS)
        for model in (UserGroup, Department):
            stale = []
            for row in model.objects.only("name", "search_name"):
                before = row.search_name
                row.refresh_search_fields()
                if row.search_name != before:
                    stale.append(row)
            changed += self._save(model, stale, ("search_name",))
        self.stdout.write(f"{changed} row(s) updated.")

    def _save(self, model, rows, fields):
        if rows:
            with transaction.atomic():
                model.objects.bulk_update(rows, fields, batch_size=BATCH)
        return len(rows)
