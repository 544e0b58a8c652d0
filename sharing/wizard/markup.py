"""Pieces of the wizard's pages built in Python, as their includes gave them.

A wizard page included a template per field (``_field.html``, ``_check.html``),
per study (``_study_label.html``) and per recipient row (``_recipient_row.html``,
with a dozen ``{% translate %}`` each); at that count the includes cost more than
the page's queries. These functions return the same markup, byte for byte
(tests/sharing/test_wizard_markup.py renders both): every value escaped as
``{{ }}`` did (`_text`), labels translated once a page.
"""

from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from .rendering import _text


def _safe(html):
    return mark_safe(html)  # noqa: S308  (every value escaped by _text)


def field_html(field):
    """sharing/wizard/_field.html: a labelled field, its help and errors."""
    errors = field.errors
    help_text = ""
    if field.help_text:
        help_text = (
            f'<p class="field-help muted small" id="{_text(field.auto_id)}_helptext">'
            f"{_text(field.help_text)}</p>"
        )
    error_html = ""
    if errors:
        error_html = f'<div class="field-error" role="alert">{_text(errors)}</div>'
    return _safe(
        f'<div class="field field-{_text(field.name)}'
        f'{" has-error" if errors else ""}">\n'
        f'  <label for="{_text(field.id_for_label)}">{_text(field.label)}</label>\n'
        f"  {_text(field)}\n"
        f"  {help_text}\n"
        f"  {error_html}\n"
        "</div>\n"
    )


def check_html(field):
    """sharing/wizard/_check.html: a checkbox in its label, its help and errors."""
    errors = field.errors
    help_text = ""
    if field.help_text:
        help_text = f'<p class="field-help muted small">{_text(field.help_text)}</p>'
    error_html = ""
    if errors:
        error_html = f'<div class="field-error" role="alert">{_text(errors)}</div>'
    return _safe(
        f'<div class="check field-{_text(field.name)}'
        f'{" has-error" if errors else ""}">\n'
        f'  <label class="check-label">{_text(field)} '
        f"<span>{_text(field.label)}</span></label>\n"
        f"  {help_text}\n"
        f"  {error_html}\n"
        "</div>\n"
    )


def _day(value):
    """``{{ value|date:"d/m/Y"|default:"?" }}``."""
    if value in (None, ""):
        return "?"
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def study_label_html(row):
    """sharing/wizard/_study_label.html: a chosen study's patient, date, description."""
    study = row["study"]
    return _safe(
        f'<span class="study-patient">{_text(row["patient_name"])}</span> '
        f'<span class="muted">· {_day(study.study_date)} · '
        f"{_text(study.description or study.modalities)}</span>\n"
    )


def _row_labels():
    """The recipient row's texts, translated and escaped once a page."""
    texts = {
        "recipient": "Recipient",
        "placeholder": "First or last name, physician number, public e-mail or mobile",
        "favorites": "Favorites",
        "detailed": "Detailed search",
        "help": (
            "Type at least two characters; the results appear below. Press Tab "
            "to reach them."
        ),
        "change": "Change",
        "remove": "Remove",
        "no_mobile": "No registered mobile number",
        "no_email": "No e-mail address",
        "favorite": "Favorite",
        "star_title": "Added to your favorites once the share is done",
    }
    return {name: _text(gettext(text)) for name, text in texts.items()}


def _flag(value):
    return "true" if value else "false"


def _option(field, note_name, note_text, hidden):
    errors = field.errors
    error_html = ""
    if errors:
        error_html = f'<div class="field-error" role="alert">{_text(errors)}</div>'
    return (
        f'    <div class="check{" has-error" if errors else ""}">\n'
        f'      <label class="check-label">{_text(field)} '
        f"<span>{_text(field.label)}</span></label>\n"
        f'      <span class="option-note muted small" data-note="{note_name}"'
        f"{' hidden' if hidden else ''}>{note_text}</span>\n"
        f"      {error_html}\n"
        "    </div>\n"
    )


def recipient_rows_html(rows, empty_form):
    """Return (the rows' <li>, the template row's <li>) of the recipients step,
    as sharing/wizard/_recipient_row.html gave them: `rows` are (form, entry)."""
    labels = _row_labels()
    shown = "".join(_recipient_row(form, entry, labels) for form, entry in rows)
    return _safe(shown), _safe(_recipient_row(empty_form, None, labels))


def _recipient_row(form, entry, t):
    prefix = _text(form.prefix)
    key = form["key"]
    key_errors = ""
    if key.errors:
        key_errors = f'<div class="field-error" role="alert">{_text(key.errors)}</div>'
    has_mobile = entry is not None and entry.has_mobile
    has_email = entry is not None and entry.has_email
    name = _text(entry.name) if entry is not None else ""
    details = _text(entry.details) if entry is not None else ""
    star = form["star"]
    return (
        f'<li class="recipient-row" data-row data-has-mobile="{_flag(has_mobile)}" '
        f'data-has-email="{_flag(has_email)}">\n'
        '  <div class="recipient-head">\n'
        '    <span class="recipient-index" aria-hidden="true"></span>\n'
        f'    <div class="recipient-pick"{" hidden" if entry else ""}>\n'
        f'      <label for="{prefix}-query">{t["recipient"]}</label>\n'
        '      <div class="recipient-search">\n'
        f'        <input type="search" id="{prefix}-query" class="recipient-query" '
        'autocomplete="off"\n'
        f'               placeholder="{t["placeholder"]}"\n'
        f'               aria-controls="{prefix}-results" '
        f'aria-describedby="{prefix}-search-help">\n'
        '        <button type="button" class="icon-button favorites-toggle" '
        f'aria-expanded="false" aria-controls="{prefix}-favorites" '
        f'title="{t["favorites"]}">\n'
        '          <span aria-hidden="true">★</span><span class="visually-hidden">'
        f"{t['favorites']}</span>\n"
        "        </button>\n"
        '        <button type="button" class="icon-button detailed-search-open" '
        f'title="{t["detailed"]}">\n'
        '          <span aria-hidden="true">⌕</span><span class="visually-hidden">'
        f"{t['detailed']}</span>\n"
        "        </button>\n"
        "      </div>\n"
        f'      <p class="visually-hidden" id="{prefix}-search-help">{t["help"]}</p>\n'
        '      <div class="picker-list recipient-favorites" '
        f'id="{prefix}-favorites" hidden></div>\n'
        '      <div class="picker-list recipient-results" '
        f'id="{prefix}-results" aria-live="polite"></div>\n'
        "    </div>\n"
        f'    <div class="recipient-chosen"{"" if entry else " hidden"}>\n'
        f'      <span class="recipient-name">{name}</span>\n'
        f'      <span class="recipient-details muted small">{details}</span>\n'
        '      <button type="button" class="link recipient-change">'
        f"{t['change']}</button>\n"
        "    </div>\n"
        '    <button type="button" class="button button-quiet button-small '
        f'recipient-remove">{t["remove"]}</button>\n'
        "  </div>\n"
        f"  {_text(key)}\n"
        f"  {key_errors}\n"
        '  <div class="recipient-options">\n'
        + _option(
            form["require_otp"], "otp", t["no_mobile"], not entry or entry.has_mobile
        )
        + _option(
            form["send_mail"], "mail", t["no_email"], not entry or entry.has_email
        )
        + '    <span class="option-note muted small" data-note="favorite" hidden>★ '
        f"{t['favorite']}</span>\n"
        '    <div class="check star">\n'
        '      <label class="check-label star-label" '
        f'title="{t["star_title"]}">{_text(star)} '
        '<span class="star-icon" aria-hidden="true"></span>'
        f"<span>{_text(star.label)}</span></label>\n"
        "    </div>\n"
        "  </div>\n"
        "</li>\n"
    )
