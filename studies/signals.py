"""Signals other apps listen to; studies never imports them back."""

from django.dispatch import Signal

# Sent after a report edit was saved, with ``report``, ``revision``, ``user``
# and ``context`` (whatever the caller passed, e.g. the bucket) as arguments.
report_edited = Signal()

# Sent when a department member downloads a study, with ``study``, ``user`` and
# ``request``: the sharing app audits it (recipients' downloads are audited there).
study_downloaded = Signal()
