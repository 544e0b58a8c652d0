"""The outbox writes a mail's bodies and bytes itself: the same as Django's.

The bodies are rendered once per share with marks for the name and the link
(sharing.outbox.delivery), the bytes written without Django's MIME classes
(sharing.outbox.mime); both must come out as Django would make them.
"""

import email
from email import policy

import pytest
from django.core.mail import BadHeaderError, EmailMessage, EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from sharing.models import Bucket, Notification
from sharing.outbox import delivery, mime

BOUNDARY = "===============0123456789012345678=="
DATE = "Tue, 01 Dec 2026 14:52:00 -0000"
HEADERS = {
    "Message-ID": "<c7ce12edef7e1460.notification-11031@pacsshare.example>",
    "Auto-Submitted": "auto-generated",
    "X-PACSshare-Notification": "11031",
}
TEXT = "Hello Jan,\n\nAnna Claes shared an exam with you.\n\n-- \nPACSshare\n"
HTML = (
    '<!DOCTYPE html>\n<html lang="en">\n<body>\n<p>Hello Jan,</p>\n</body>\n</html>\n'
)


def django_bytes(message):
    """What Django's SMTP backend sends, with the test's boundary and date."""
    msg = message.message()
    if msg.is_multipart():
        msg.set_boundary(BOUNDARY)
    msg.replace_header("Date", DATE)
    return msg.as_bytes(linesep="\r\n")


def mail(subject="Anna Claes shared an exam with you", text=TEXT, html=HTML, **kw):
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=kw.pop("from_email", "PACSshare <noreply@pacsshare.local>"),
        to=kw.pop("to", ["dr.peeters@example.org"]),
        headers=kw.pop("headers", HEADERS),
        **kw,
    )
    message.attach_alternative(html, "text/html")
    return message


CASES = {
    "ascii": mail(),
    "accents in the subject and bodies": mail(
        subject="Jérôme Dupré a partagé un examen avec vous",
        text="Bonjour Zoë,\n\nJérôme Dupré (Radiologie Sint-Jan) a partagé…\n",
        html="<p>Bonjour Zoë,</p>\n<p>Jérôme Dupré — ✓</p>\n",
    ),
    "long ascii subject": mail(subject="Urgent: " + "Dr. Annemie Vandenberghe " * 5),
    "long accented subject": mail(subject="Urgent : " + "Jérôme Dupré " * 12),
    "spaces in the subject": mail(subject="  two  spaces  "),
    "name in the address": mail(to=["Dr. Peeters <dr.peeters@example.org>"]),
    "accented name in the address": mail(to=["Zoë Peeters <zoe@example.org>"]),
    "international domain": mail(to=["dr@zoë.example"]),
    "carriage returns and no final newline": mail(
        text="one\r\ntwo\rthree\n\nfour", html="<p>x</p>"
    ),
    "a line too long for SMTP": mail(text="x" * 1200 + "\n", html="é" * 600),
    "a long header": mail(headers={**HEADERS, "X-Long": "word " * 30}),
    "cc": mail(cc=["cc@example.org"]),
    "no message-id": mail(headers={"Auto-Submitted": "auto-generated"}),
}


@pytest.mark.parametrize("name", CASES)
def test_the_bytes_are_djangos(name, settings):
    settings.DEFAULT_CHARSET = "utf-8"
    message = CASES[name]
    if name == "no message-id":
        # Django makes one up (random): only the fallback is checked.
        assert mime.message_bytes(message).count(b"Message-ID:") == 1
        return
    assert mime.message_bytes(message, boundary=BOUNDARY, date=DATE) == django_bytes(
        message
    )


def test_the_envelope_is_djangos():
    from django.core.mail.message import sanitize_address

    for message in CASES.values():
        sender, recipients = mime.envelope(message)
        assert sender == sanitize_address(message.from_email, "utf-8")
        assert recipients == [
            sanitize_address(address, "utf-8") for address in message.recipients()
        ]


def test_a_fresh_boundary_and_date_parse_back():
    raw = mime.message_bytes(CASES["accents in the subject and bodies"])
    parsed = email.message_from_bytes(raw, policy=policy.default)
    # Django folds a long encoded subject onto its next line: hence the space.
    assert parsed["Subject"].strip() == "Jérôme Dupré a partagé un examen avec vous"
    assert parsed["Date"]
    text, html = (part.get_content() for part in parsed.iter_parts())
    assert text.startswith("Bonjour Zoë,") and "✓" in html


def test_a_body_with_the_boundary_gets_another_one():
    raw = mime.message_bytes(mail(text=f"--{BOUNDARY}\n"), boundary=BOUNDARY)
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_boundary() != BOUNDARY
    text, _html = (part.get_content() for part in parsed.iter_parts())
    assert text.splitlines() == [f"--{BOUNDARY}"]


def test_a_header_with_a_newline_is_refused():
    with pytest.raises(BadHeaderError):
        mime.message_bytes(mail(subject="Hello\nBcc: victim@example.org"))


def test_other_messages_go_through_django():
    message = EmailMessage("Plain", "Body", "a@example.org", ["b@example.org"])
    assert mime.message_bytes(message).endswith(b"\r\n\r\nBody")


def share_context(**kwargs):
    return {
        "recipient_name": "Dr. Jan Peeters",
        "sender_name": "Anna Claes",
        "department_name": "Radiologie & Co",
        "exams": [{"initials": "J.P.", "description": "CT <thorax>", "date": "1 dec"}],
        "exam_count": 1,
        "message": "Graag uw advies.\nDank u.",
        "require_otp": True,
        "via": "",
        "urgent": False,
        "language_code": "nl",
        **kwargs,
    }


def rendered(context, language="nl"):
    """The mail as its templates render it, link and all."""
    bucket = Bucket(pk=3)
    bucket.set_link_secret()
    notification = Notification(
        pk=5, kind="share", language=language, subject="s", mail_context=context
    )
    notification.bucket = bucket
    _subject, text, html = delivery.render_share_mail(notification)
    full = {**context, "link": delivery.bucket_link_url(bucket)}
    with translation.override(language):
        expected = (
            render_to_string("sharing/email/share_body.txt", full),
            render_to_string("sharing/email/share_body.html", full),
        )
    return (text, html), expected


@pytest.mark.parametrize(
    "context",
    [
        share_context(),
        share_context(recipient_name=""),
        {k: v for k, v in share_context().items() if k != "recipient_name"},
        share_context(recipient_name='Zoë O\'Brien <&> "Jr"'),
        share_context(urgent=True, via="Praktijk <De Linde>", require_otp=False),
        share_context(message=f"{delivery.NAME_MARK} {delivery.LINK_MARK}"),
        share_context(recipient_name=f"Jan {delivery.LINK_MARK}"),
    ],
)
def test_share_bodies_are_the_templates(context):
    for _ in range(2):  # rendered, then from the worker's cache
        got, expected = rendered(context)
        assert got == expected


def test_share_bodies_of_one_share_differ_by_name_and_link_only():
    (text_a, _), _ = rendered(share_context(recipient_name="Jan"))
    (text_b, _), _ = rendered(share_context(recipient_name="Piet"))
    assert "Jan" in text_a and "Piet" in text_b and "Jan" not in text_b
