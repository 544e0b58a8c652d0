"""Keep bucket link tokens out of the logs.

A link token is a bearer secret until the bucket is revoked; the request line of
`/b/<token>/` must not reach a log file. Attached to django.server (runserver's
request lines) and django.request (4xx/5xx warnings) in settings.LOGGING.
"""

import logging
import re

TOKEN_PATH_RE = re.compile(r"/b/(?!open/)[A-Za-z0-9_-]{8,}")


class RedactLinkTokens(logging.Filter):
    """Replace the token of any /b/<token>/ path in a record with "[redacted]"."""

    def filter(self, record):
        message = record.getMessage()
        if "/b/" in message:
            record.msg = TOKEN_PATH_RE.sub("/b/[redacted]", message)
            record.args = ()
        return True
