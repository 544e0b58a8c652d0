"""Writes of the recipient directory: a sender's favorites."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from .entries import entries_for_keys, parse_key
from .models import Favorite


def _target(kind, pk):
    return {f"{kind}_id": pk}


def favorite_add(*, owner, key: str) -> bool:
    """Add a user, public group or public department to the sender's favorites.

    Return True when it was added, False when it already was a favorite; raise
    ValidationError for a key that names nothing the sender may pick.
    """
    parsed = parse_key(key)
    if parsed is None or not entries_for_keys([parsed]):
        raise ValidationError(_("This recipient cannot be found."), code="unknown")
    return _favorite_create(owner=owner, kind=parsed[0], pk=parsed[1])


def _favorite_create(*, owner, kind, pk):
    if Favorite.objects.filter(owner=owner, **_target(kind, pk)).exists():
        return False
    try:
        with transaction.atomic():
            Favorite.objects.create(owner=owner, **_target(kind, pk))
    except IntegrityError:
        return False  # added meanwhile by a concurrent request
    return True


def favorite_remove(*, owner, key: str) -> bool:
    """Remove a favorite of the sender; return whether there was one."""
    parsed = parse_key(key)
    if parsed is None:
        return False
    deleted, _counts = Favorite.objects.filter(owner=owner, **_target(*parsed)).delete()
    return deleted > 0


def favorites_add_many(*, owner, keys: Iterable[str]) -> int:
    """Add the starred recipients of a completed share to the sender's favorites.

    Idempotent: keys already in the favorites, unknown or no longer pickable are
    skipped. Return how many favorites were added.
    """
    parsed = []
    for key in keys:
        item = parse_key(key)
        if item is not None and item not in parsed:
            parsed.append(item)
    entries = entries_for_keys(parsed)
    if not entries:
        return 0
    # A fixed number of queries however many are starred: what is already a
    # favorite, then one INSERT of the rest (a concurrent add is skipped).
    held = set()
    for kind in {entry.kind for entry in entries}:
        pks = [entry.pk for entry in entries if entry.kind == kind]
        held |= {
            (kind, pk)
            for pk in Favorite.objects.filter(
                owner=owner, **{f"{kind}_id__in": pks}
            ).values_list(f"{kind}_id", flat=True)
        }
    new = [
        Favorite(owner=owner, **_target(entry.kind, entry.pk))
        for entry in entries
        if (entry.kind, entry.pk) not in held
    ]
    Favorite.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)
