"""The SMS backends of pacsshare.sms, shaped like Django's mail backends."""

import io
import logging

import pytest

from pacsshare import sms
from pacsshare.sms.backends import twilio as twilio_backend
from tests.fixtures_services import (  # noqa: F401
    TWILIO_TEST_SID,
    RecordingTwilioHttpClient,
    sms_outbox,
    twilio_http,
)


def test_it_sends_to_the_locmem_outbox(sms_outbox):  # noqa: F811
    provider_id = sms.send_sms("+32475000001", "Hello")

    assert [(m.to, m.body) for m in sms_outbox] == [("+32475000001", "Hello")]
    assert provider_id.startswith("locmem-")


def test_it_writes_one_file_per_sms_in_the_outbox_folder(settings, tmp_path):
    settings.SMS_BACKEND = "pacsshare.sms.backends.filebased.SmsBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms")

    sms.send_sms("+32475000001", "First")
    sms.send_sms("+32475000002", "Second")

    files = sorted((tmp_path / "sms").glob("*.sms"))
    assert len(files) == 2
    contents = [f.read_text() for f in files]
    assert any(
        c.startswith("To: +32475000001\n") and "\n\nFirst\n" in c for c in contents
    )
    assert any("\n\nSecond\n" in c for c in contents)


def test_it_prints_to_the_console_stream():
    stream = io.StringIO()
    connection = sms.get_connection(
        "pacsshare.sms.backends.console.SmsBackend", stream=stream
    )

    sms.send_sms("+32475000001", "Hi there", connection=connection)

    assert "To: +32475000001" in stream.getvalue()
    assert "Hi there" in stream.getvalue()


def test_a_message_never_shows_its_body_in_repr():
    message = sms.SmsMessage(to="+32475123456", body="Your code is 123456")

    assert "123456" not in repr(message) and "123456" not in str(message)
    assert repr(message) == "SmsMessage(to='…56')"


def test_twilio_posts_to_the_messages_endpoint(twilio_http, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)

    provider_id = sms.send_sms("+32475123456", "Your code is 918273")

    (request,) = twilio_http.requests
    assert request["method"] == "POST"
    assert request["uri"] == (
        f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_TEST_SID}/Messages.json"
    )
    assert request["data"] == {
        "To": "+32475123456",
        "From": "+3225550100",
        "Body": "Your code is 918273",
    }
    assert request["auth"] == (TWILIO_TEST_SID, "test-auth-token")
    assert provider_id.startswith("SM")
    assert "918273" not in caplog.text
    assert "+32475123456" not in caplog.text


def test_twilio_accepts_an_injected_http_client(settings):
    settings.TWILIO_HTTP_CLIENT = ""
    client = RecordingTwilioHttpClient()
    RecordingTwilioHttpClient.requests.clear()
    connection = sms.get_connection(
        "pacsshare.sms.backends.twilio.SmsBackend",
        account_sid=TWILIO_TEST_SID,
        auth_token="t",
        from_="+3225550199",
        http_client=client,
    )

    sms.send_sms("+32475000003", "Hi", connection=connection)

    assert RecordingTwilioHttpClient.requests[-1]["data"]["From"] == "+3225550199"
    RecordingTwilioHttpClient.requests.clear()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, sms.TransientSmsError),
        (503, sms.TransientSmsError),
        (429, sms.TransientSmsError),
        (400, sms.PermanentSmsError),
        (401, sms.PermanentSmsError),
        (404, sms.PermanentSmsError),
    ],
)
def test_twilio_errors_are_transient_or_permanent(
    twilio_http,  # noqa: F811
    caplog,
    status,
    error,
):
    caplog.set_level(logging.DEBUG)
    twilio_http.statuses.append(status)

    with pytest.raises(error) as raised:
        sms.send_sms("+32475123456", "Your code is 564738")

    assert f"HTTP {status}" in str(raised.value)
    assert "564738" not in str(raised.value) and "564738" not in caplog.text


def test_twilio_network_errors_are_transient(settings):
    class Unreachable(RecordingTwilioHttpClient):
        def request(self, *args, **kwargs):
            raise ConnectionError("connection refused")

    connection = sms.get_connection(
        "pacsshare.sms.backends.twilio.SmsBackend",
        account_sid=TWILIO_TEST_SID,
        auth_token="t",
        from_="+3225550199",
        http_client=Unreachable(),
    )

    with pytest.raises(sms.TransientSmsError):
        sms.send_sms("+32475000003", "Hi", connection=connection)


def test_twilio_needs_credentials(settings):
    settings.TWILIO_ACCOUNT_SID = ""

    with pytest.raises(Exception, match="TWILIO_ACCOUNT_SID"):
        sms.get_connection("pacsshare.sms.backends.twilio.SmsBackend")


def test_fail_silently_swallows_errors(twilio_http):  # noqa: F811
    twilio_http.statuses.append(500)

    provider_id = sms.send_sms("+32475000003", "Hi", fail_silently=True)

    assert provider_id == ""


def test_classify_error_reads_the_http_status():
    from twilio.base.exceptions import TwilioRestException

    assert isinstance(
        twilio_backend.classify_error(TwilioRestException(502, "uri")),
        sms.TransientSmsError,
    )
    assert isinstance(
        twilio_backend.classify_error(TwilioRestException(403, "uri")),
        sms.PermanentSmsError,
    )
