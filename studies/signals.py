"""Signals other apps listen to; studies never imports them back."""

from django.dispatch import Signal

# Sent after a report edit was saved, with ``report``, ``revision``, ``user``
# and ``context`` (whatever the caller passed, e.g. the bucket) as arguments.
report_edited = Signal()
