"""The local outbox at /dev/outbox/ (DEBUG only): the mails and SMS under var/outbox/.

Django's file mail backend writes each connection's messages to one ``.log`` file,
separated by a line of 79 dashes; the file SMS backend writes one ``.sms`` file per
message. This page lists both, newest first, so a newcomer can follow a share's
link without any mail server.
"""

import email
import email.policy
from pathlib import Path

from django.conf import settings
from django.http import Http404
from django.shortcuts import render

SEPARATOR = "-" * 79
MAX_ITEMS = 200


def _read_mails(folder):
    items = []
    for path in folder.glob("*.log") if folder.is_dir() else []:
        raw = path.read_bytes()
        mtime = path.stat().st_mtime
        for chunk in raw.split(SEPARATOR.encode() + b"\n"):
            if not chunk.strip():
                continue
            message = email.message_from_bytes(chunk, policy=email.policy.default)
            text = message.get_body(preferencelist=("plain",))
            items.append(
                {
                    "kind": "mail",
                    "mtime": mtime,
                    "date": message["Date"] or "",
                    "to": message["To"] or "",
                    "subject": message["Subject"] or "",
                    "body": text.get_content() if text else "",
                }
            )
    return items


def _read_sms(folder):
    items = []
    for path in folder.glob("*.sms") if folder.is_dir() else []:
        head, _sep, body = path.read_text(encoding="utf-8").partition("\n\n")
        headers = dict(
            line.split(": ", 1) for line in head.splitlines() if ": " in line
        )
        items.append(
            {
                "kind": "sms",
                "mtime": path.stat().st_mtime,
                "date": headers.get("Date", ""),
                "to": headers.get("To", ""),
                "subject": "",
                "body": body.strip(),
            }
        )
    return items


def outbox_list(request):
    """List the mails and SMS of the local outbox, newest first."""
    if not settings.DEBUG:
        raise Http404
    mail_dir = Path(getattr(settings, "EMAIL_FILE_PATH", "") or settings.OUTBOX_DIR)
    sms_dir = Path(settings.SMS_FILE_PATH)
    items = _read_mails(mail_dir) + _read_sms(sms_dir)
    items.sort(key=lambda item: item["mtime"], reverse=True)
    return render(
        request,
        "dev/outbox.html",
        {"items": items[:MAX_ITEMS], "mail_dir": mail_dir, "sms_dir": sms_dir},
    )
