"""The local outbox page (/dev/outbox/, DEBUG only)."""

import os
import time

import pytest
from django.core import mail
from django.http import Http404
from django.test import RequestFactory

from pacsshare import outbox, sms


@pytest.fixture
def file_backends(settings):
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.SMS_BACKEND = "pacsshare.sms.backends.filebased.SmsBackend"
    return settings


def get_page():
    request = RequestFactory().get("/dev/outbox/")
    return outbox.outbox_list(request)


def test_it_lists_mails_and_sms_newest_first_with_clickable_links(file_backends):
    mail.send_mail(
        "Dr. A shared an exam with you",
        "Open the exam:\nhttp://127.0.0.1:8000/b/abc123/\n",
        "noreply@pacsshare.local",
        ["dr@example.org"],
    )
    older = next(iter(os.scandir(file_backends.EMAIL_FILE_PATH))).path
    os.utime(older, (time.time() - 60, time.time() - 60))
    sms.send_sms("+32475000001", "Your PACSshare code is 123456.")

    response = get_page()

    html = response.content.decode()
    assert response.status_code == 200
    assert "Dr. A shared an exam with you" in html
    assert "To: dr@example.org" in html
    assert '<a href="http://127.0.0.1:8000/b/abc123/"' in html
    assert "Your PACSshare code is 123456." in html
    assert html.index("+32475000001") < html.index("dr@example.org")


def test_it_says_when_the_outbox_is_empty(file_backends):
    response = get_page()

    assert "The outbox is empty" in response.content.decode()


def test_it_is_not_there_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(Http404):
        get_page()
