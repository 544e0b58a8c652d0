"""A version of the directory, changed whenever what an entry shows may change.

The share wizard keeps the entries it resolved for a recipients step and uses
them again on the GET of a later step while both the step's data and this
version are unchanged (the final POST always resolves again). The version is a
random token in the default cache (Redis in production, shared by the workers),
replaced on every save or delete of a user (fields an entry shows), group,
department, membership, physician number or favorite, and on group membership
changes. Bulk ``update()`` sends no signal: code doing one on these tables calls
``directory_changed()``. If the cache fails the version is None and nothing is
reused. With a per-process cache (no REDIS_URL) a change made by one worker is
not seen by another worker's GETs; the final POST validates afresh anyway.
"""

import logging
import secrets

from django.core.cache import cache

logger = logging.getLogger(__name__)

VERSION_KEY = "recipients.directory_version"
# A user's save touching only these fields changes no entry (e.g. a login).
_UNSHOWN_USER_FIELDS = frozenset({"last_login", "password"})


def directory_version():
    """Return the directory's current version token, or None without a cache."""
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            # A fixed first version: processes without a shared cache agree.
            cache.add(VERSION_KEY, "initial", None)
            version = cache.get(VERSION_KEY)
        return version
    except Exception:  # the cache is down: nothing is reused
        logger.warning("directory version unavailable", exc_info=True)
        return None


def directory_changed(**kwargs):
    """Give the directory a new version (a signal receiver, or call it)."""
    try:
        cache.set(VERSION_KEY, secrets.token_hex(8), None)
    except Exception:
        logger.warning("directory version not changed", exc_info=True)


def user_saved(sender, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= _UNSHOWN_USER_FIELDS:
        return
    directory_changed()


def connect():
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from .models import (
        Department,
        Favorite,
        Membership,
        PhysicianNumber,
        User,
        UserGroup,
    )

    post_save.connect(user_saved, sender=User, dispatch_uid="dirver-user")
    post_delete.connect(directory_changed, sender=User, dispatch_uid="dirver-user-d")
    for model in (UserGroup, Department, Membership, PhysicianNumber, Favorite):
        uid = f"dirver-{model._meta.model_name}"
        post_save.connect(directory_changed, sender=model, dispatch_uid=uid)
        post_delete.connect(directory_changed, sender=model, dispatch_uid=uid + "-d")
    m2m_changed.connect(
        directory_changed, sender=UserGroup.members.through, dispatch_uid="dirver-m2m"
    )
