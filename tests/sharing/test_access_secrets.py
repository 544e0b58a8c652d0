"""No link token or SMS code in logs, URLs after the first redirect, or the DB."""

import logging

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.urls import reverse

from tests.factories import PASSWORD, make_bucket
from tests.sharing.access_helpers import CODE_RE

pytestmark = pytest.mark.django_db


def all_database_text():
    """Return every value of every row of every table, as one string."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.extend(str(value) for row in cursor.fetchall() for value in row)
    # Sessions are signed and compressed: read them decoded too.
    chunks.extend(str(session.get_decoded()) for session in Session.objects.all())
    return "\n".join(chunks)


def walk_the_link(client, bucket, capture, sms_outbox):
    """Follow the e-mail link as an anonymous visitor through login and the code.

    Return (every URL the browser was sent to after the first, the code).
    """
    token = bucket.link_token
    urls = []
    response = client.get(reverse("sharing:bucket_link", args=[token]))
    urls.append(response["Location"])
    received = reverse("sharing:received", kwargs={"bucket_id": bucket.pk})
    with capture(execute=True):
        response = client.post(
            response["Location"],
            {
                "username": bucket.recipient_user.username,
                "password": PASSWORD,
                "next": received,
            },
            follow=True,
        )
    urls.extend(url for url, _status in response.redirect_chain)
    assert response.status_code == 200
    code = CODE_RE.search(sms_outbox[-1].body).group(1)
    code_url = reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk})
    with capture(execute=True):
        response = client.post(code_url, {"code": code}, follow=True)
    urls.extend(url for url, _status in response.redirect_chain)
    assert "Peeters" in response.content.decode()
    return urls, code


def test_no_token_or_code_in_logs_urls_or_database(
    client, caplog, sms_outbox, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    bucket = make_bucket(require_otp=True)
    token = bucket.link_token

    urls, code = walk_the_link(
        client, bucket, django_capture_on_commit_callbacks, sms_outbox
    )

    assert urls, "the flow redirects"
    assert all(token not in url and code not in url for url in urls), urls
    assert token not in caplog.text
    assert code not in caplog.text
    stored = all_database_text()
    assert token not in stored
    assert code not in stored


def test_request_loggers_redact_link_tokens(client, caplog):
    caplog.set_level(logging.DEBUG)
    token = "Zm9vYmFyLXRva2VuLXRoYXQtZG9lcy1ub3QtZXhpc3Q"

    client.get(f"/b/{token}/")  # unknown: the refusal page, audited
    client.get(f"/b/{token}/more/")  # no such URL: django.request logs a 404
    # runserver's request line (django.server), as WSGIRequestHandler writes it.
    logging.getLogger("django.server").warning(
        '"%s" %s %s', f"GET /b/{token}/ HTTP/1.1", "404", "1234"
    )

    assert "/b/[redacted]" in caplog.text
    assert token not in caplog.text
