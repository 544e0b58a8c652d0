"""Render directory entries without a template include per entry.

The quick search answers every keystroke; an ``{% include %}`` per entry (with
the whole context pushed for each) cost more than its queries. The wizard's
"pick" entry is built here, every value escaped with ``html.escape`` as the
template's ``{{ }}`` did (names, details and keys are plain strings, data,
never markup; Django's ``escape`` is ``html.escape``). The other modes
(favorites, select, manage) keep the template ``recipients/_entry.html``.
"""

from html import escape

from django.utils.safestring import mark_safe

_PICK = (
    '<li class="directory-entry directory-{kind}">\n'
    '  <button type="button" class="directory-pick" data-key="{key}" '
    'data-kind="{kind}" data-name="{name}" data-details="{details}" '
    'data-has-mobile="{has_mobile}" data-has-email="{has_email}" '
    'data-language="{language}" data-favorite="{favorite}">\n'
    '    <span class="directory-name">{name}</span>\n'
    '    <span class="directory-details">{details}</span>\n'
    "  </button>\n"
    "</li>"
)


def _flag(value):
    return "true" if value else "false"


def pick_entries_html(entries, favorite_keys):
    """Return the <li> of every entry as the wizard's pick buttons (safe HTML)."""
    return mark_safe(  # noqa: S308 (every value below is escaped)
        "".join(
            _PICK.format(
                kind=escape(entry.kind),
                key=escape(entry.key),
                name=escape(entry.name),
                details=escape(entry.details),
                has_mobile=_flag(entry.has_mobile),
                has_email=_flag(entry.has_email),
                language=escape(entry.language),
                favorite=_flag(entry.key in favorite_keys),
            )
            for entry in entries
        )
    )
