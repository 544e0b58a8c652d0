"""Development-only pages (mounted only when DEBUG): the local outbox."""

from django.urls import path

from . import outbox

app_name = "dev"
urlpatterns = [
    path("outbox/", outbox.outbox_list, name="outbox"),
]
