"""The bytes of an outbox e-mail as Django would write them, without its MIME classes.

A share mail is a text body and one HTML alternative. Django builds it as
``email.mime`` objects and flattens them with ``email.generator``, which encodes
and folds every header through ``email.header.Header`` and compiles a regular
expression for the boundary: most of a mail's cost on the worker. For that one
shape ``message_bytes`` writes the same bytes directly (the tests compare them
with Django's, byte for byte); any other message, and the rare body with a line
too long for SMTP (which Django sends quoted-printable), goes through Django.
Headers still pass Django's own guard against header injection and its encoding
of non-ASCII values.
"""

import functools
import random
import re
import sys
from email.header import Header
from email.utils import formatdate

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import (
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    forbid_multi_line_headers,
    sanitize_address,
)

MAX_HEADER_LINE = 78  # email.policy.compat32's max_line_length
NEWLINES = re.compile(r"\r\n|\r|\n")  # as email.generator splits lines
# An address Django's sanitize_address returns unchanged: ASCII dot-atom@domain.
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
SIMPLE_ADDRESS = re.compile(rf"{ATOM}(\.{ATOM})*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
OWN_HEADERS = {"from", "to", "cc", "reply-to", "date"}


def envelope(message) -> tuple[str, list[str]]:
    """Return the SMTP envelope (sender, recipients) Django's SMTP backend uses."""
    encoding = message.encoding or settings.DEFAULT_CHARSET
    return _sender(message.from_email, encoding), [
        address
        if SIMPLE_ADDRESS.fullmatch(address)
        else sanitize_address(address, encoding)
        for address in message.recipients()
    ]


@functools.lru_cache(maxsize=16)
def _sender(from_email, encoding):
    return sanitize_address(from_email, encoding)


def message_bytes(message, *, boundary=None, date=None) -> bytes:
    """Return ``message`` as Django's SMTP backend sends it (CRLF line ends).

    ``boundary`` and ``date`` are for the tests, which compare with Django.
    """
    encoding = message.encoding or settings.DEFAULT_CHARSET
    if not _is_plain_alternative(message, encoding):
        return _django_bytes(message, boundary, date)
    html, _mimetype = message.alternatives[0]
    parts = []
    for body, subtype in ((message.body, "plain"), (html, "html")):
        lines = NEWLINES.split(body)
        encoded = [line.encode(errors="surrogateescape") for line in lines]
        if any(len(line) > RFC5322_EMAIL_LINE_LENGTH_LIMIT for line in encoded):
            return _django_bytes(message, boundary, date)  # sent quoted-printable
        transfer = "7bit" if body.isascii() else "8bit"
        parts.append(
            (
                f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                f"MIME-Version: 1.0\r\nContent-Transfer-Encoding: {transfer}\r\n\r\n"
            ).encode()
            + b"\r\n".join(encoded)
        )
    if boundary is None:
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
    if any(boundary.encode() in part for part in parts):
        return _django_bytes(message, None, date)  # as unlikely as it gets
    headers = [
        ("Subject", message.subject),
        ("From", message.from_email),
        ("To", ", ".join(str(address) for address in message.to)),
        ("Date", date or formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
        *message.extra_headers.items(),
    ]
    head = [
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n',
        "MIME-Version: 1.0\r\n",
    ]
    for name, value in headers:
        _name, value = forbid_multi_line_headers(name, value, encoding)
        head.append(_fold(name, value))
    separator = f"\r\n--{boundary}\r\n".encode()
    return b"".join(
        (
            "".join(head).encode(),
            f"\r\n--{boundary}\r\n".encode(),
            separator.join(parts),
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )


def _is_plain_alternative(message, encoding):
    """True for a text body with one HTML alternative and nothing else."""
    return (
        type(message) is EmailMultiAlternatives
        and encoding.lower() == "utf-8"
        and message.body
        and message.to
        and not (message.cc or message.bcc or message.reply_to or message.attachments)
        and len(message.alternatives) == 1
        and message.alternatives[0][1] == "text/html"
        and isinstance(message.alternatives[0][0], str)
        and "message-id" in (key.lower() for key in message.extra_headers)
        and not OWN_HEADERS & {key.lower() for key in message.extra_headers}
    )


def _fold(name, value):
    """Return the header line email.generator writes for ``value`` (compat32)."""
    short = len(name) + 2 + len(value) <= MAX_HEADER_LINE
    if short and value.isascii() and "  " not in value and value == value.strip():
        return f"{name}: {value}\r\n"
    folded = Header(value, header_name=name).encode(
        linesep="\r\n", maxlinelen=MAX_HEADER_LINE
    )
    return f"{name}: {folded}\r\n"


def _django_bytes(message, boundary, date):
    msg = message.message()
    if boundary is not None and msg.is_multipart():
        msg.set_boundary(boundary)
    if date is not None:
        msg.replace_header("Date", date)
    return msg.as_bytes(linesep="\r\n")
