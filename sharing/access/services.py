"""What a recipient's visit changes: the bucket's first opening, audited."""

from ..audit.record import audit_event
from ..models import AuditEvent, BucketOpening


def bucket_mark_opened(
    *, bucket, user, study, request=None, first_only=False, audit=None
):
    """Record that the user opened a study of the bucket; audit it.

    The first opening of the bucket by this user is kept (the "Message" label
    turns green) and True is returned; later ones return False. With
    `first_only`, a later opening is not audited again (a series page reached
    from a bookmark counts as opening the study; the study page audits each).
    A bucket from the guard knows whether this user opened it already
    (`opened_by_user`): a later visit then reads no opening. With an `audit`
    list, the event is added to it for the caller to write with the page's
    others; otherwise it is written now.
    """
    if getattr(bucket, "opened_by_user", False):
        created = False
    else:
        _opening, created = BucketOpening.objects.get_or_create(
            bucket=bucket, user=user
        )
    if created or not first_only:
        event = audit_event(
            action=AuditEvent.Action.BUCKET_OPENED,
            request=request,
            actor=user,
            bucket=bucket,
            studies=[study],
            details={"first": created},
        )
        if audit is None:
            event.save()
        else:
            audit.append(event)
    return created
