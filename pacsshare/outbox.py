"""The local outbox at /dev/outbox/ (DEBUG only); the notifications issue fills it."""

from django.http import HttpResponse


def outbox_list(request):
    return HttpResponse("Outbox is empty.", content_type="text/plain")
