"""Pieces of the wizard's pages built in Python, as their includes gave them.

A wizard page included a template per field (``_field.html``, ``_check.html``),
per study (``_study_label.html``) and per recipient row (``_recipient_row.html``,
with a dozen ``{% translate %}`` each); at that count the includes cost more than
the page's queries. These functions return the same markup, byte for byte
(tests/sharing/test_wizard_markup.py renders both): every value escaped as
``{{ }}`` did (`_text`), labels translated once a page (and, as a literal's
``{% translate %}``, not escaped).
"""

from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext

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
    """The recipient row's texts, translated once a page (a template's literal
    {% translate %} is not escaped: the catalogues are ours)."""
    texts = {
        "recipient": gettext("Recipient"),
        "placeholder": gettext(
            "First or last name, physician number, public e-mail or mobile"
        ),
        "favorites": gettext("Favorites"),
        "detailed": gettext("Detailed search"),
        "help": gettext(
            "Type at least two characters; the results appear below. Press Tab "
            "to reach them."
        ),
        "change": gettext("Change"),
        "remove": gettext("Remove"),
        "no_mobile": gettext("No registered mobile number"),
        "no_email": gettext("No e-mail address"),
        "favorite": gettext("Favorite"),
        "star_title": gettext("Added to your favorites once the share is done"),
    }
    return texts


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


def _error_div(field):
    errors = field.errors
    if not errors:
        return ""
    return f'<div class="field-error" role="alert">{_text(errors)}</div>'


def _radios(field):
    """``{% for radio in field %}<label>{{ radio.tag }} <span>..</span></label>``."""
    return "".join(
        f'<label class="check-label">{_text(radio.tag())} '
        f"<span>{_text(radio.choice_label)}</span></label>"
        for radio in field
    )


def _iso_day(value):
    """``{{ value|date:'Y-m-d' }}``."""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _not_mailed(not_mailed):
    """sharing/wizard/_not_mailed.html."""
    parts = []
    for name, members in not_mailed:
        text = ngettext(
            "No mail for this member of %(group)s, who has no e-mail address:",
            "No mail for these members of %(group)s, who have no e-mail address:",
            len(members),
        ) % {"group": _text(name), "counter": _text(len(members))}
        names = ", ".join(_text(member) for member in members)
        parts.append(
            f'<p class="not-mailed small" data-not-mailed>{text} {names}</p>\n'
        )
    return "".join(parts)


def parameters_step_html(
    form,
    *,
    recipients,
    not_mailed,
    confirm_field,
    confirm_digest,
    user_recipient,
    language_by_hand,
    language_reason,
    department,
    department_today,
    latest_valid_until,
    anonymize_left_out,
):
    """The parameters step's panel, as sharing/wizard/parameters.html gave it."""
    parts = ['\n<section class="panel" aria-labelledby="step-title">\n']
    title = gettext("Step 3: Parameters for sharing")
    parts.append(f'  <h2 id="step-title">{title}</h2>\n  ')
    non_field = form.non_field_errors()
    if form.errors and not non_field:
        parts.append(
            '<div class="alert alert-error" role="alert"><p>'
            f"{gettext('Please correct the errors below.')}</p></div>"
        )
    parts.append("\n  ")
    if non_field:  # includes/form_errors.html
        errors = "".join(f"<p>{_text(error)}</p>" for error in non_field)
        parts.append(
            f'\n<div class="alert alert-error" role="alert">\n  {errors}\n</div>\n'
        )
    parts.append(
        f'\n\n  <input type="hidden" name="{_text(confirm_field)}" '
        f'value="{_text(confirm_digest)}">\n'
        f'  <p class="muted small">{gettext("Recipients:")}\n    '
    )
    parts.append(
        ", ".join(f"<strong>{_text(entry.name)}</strong>" for entry, _o in recipients)
    )
    parts.append("</p>\n  ")
    parts.append(_not_mailed(not_mailed))
    access = form["access"]
    parts.append(
        "\n\n"
        f'  <fieldset class="param-group{" has-error" if access.errors else ""}">\n'
        f"    <legend>{gettext('Access')}</legend>\n"
        f'    <div class="radio-list">{_radios(access)}</div>\n'
        f"    {_error_div(access)}\n    "
    )
    if user_recipient:
        note = gettext("“Images only” is not available when sharing with a user.")
        parts.append(f'<p class="field-help muted small">{note}</p>')
    language = form["language"]
    by_hand = gettext("Chosen by you.")
    reason_text = by_hand if language_by_hand else _text(language_reason)
    parts.append(
        "\n  </fieldset>\n\n"
        '  <div class="param-grid">\n'
        f"    {field_html(form['reason'])}\n"
        '    <div class="field field-language'
        f'{" has-error" if language.errors else ""}">\n'
        f'      <label for="{_text(language.id_for_label)}">'
        f"{_text(language.label)}</label>\n"
        f"      {_text(language)}\n"
        '      <p class="field-help muted small" id="language-reason" '
        f'data-by-hand="{by_hand}">{reason_text}</p>\n'
        f"      {_error_div(language)}\n"
        "    </div>\n"
        "  </div>\n\n"
    )
    valid_until = form["valid_until"]
    label_id = _text(valid_until.id_for_label)
    pick = gettext("Pick the date in a calendar")
    minimum = f'min="{_iso_day(department_today)}"' if department_today else ""
    maximum = f'max="{_iso_day(latest_valid_until)}"' if latest_valid_until else ""
    zone = ""
    if department:
        zone = gettext("Access ends at midnight at the end of that day (%(zone)s).") % {
            "zone": _text(department.time_zone)
        }
    unlimited = check_html(form["unlimited"]) if "unlimited" in form.fields else ""
    consent = gettext("Without the patient's consent the study may not be shared.")
    parts.append(
        '  <fieldset class="param-group'
        f'{" has-error" if valid_until.errors else ""}">\n'
        f"    <legend>{gettext('Validity')}</legend>\n"
        '    <div class="validity">\n'
        '      <div class="field field-valid_until">\n'
        f'        <label for="{label_id}">{_text(valid_until.label)}</label>\n'
        '        <div class="date-entry">\n'
        f"          {_text(valid_until)}\n"
        '          <input type="date" class="date-picker" '
        f'id="{label_id}_picker"\n'
        f'                 aria-label="{pick}"\n'
        f"                 {minimum}\n"
        f"                 {maximum} hidden>\n"
        "        </div>\n"
        '        <p class="field-help muted small">'
        f"{_text(valid_until.help_text)}.\n"
        f"          {zone}</p>\n"
        f"        {_error_div(valid_until)}\n"
        "      </div>\n"
        f"      {unlimited}\n"
        "    </div>\n"
        "  </fieldset>\n\n"
        '  <fieldset class="param-group">\n'
        f"    <legend>{gettext('Consent')}</legend>\n"
        f"    {check_html(form['patient_agreed'])}\n"
        '    <p class="field-help muted small">'
        f"{consent}</p>\n"
        "  </fieldset>\n\n  "
    )
    if form.fields["label"].queryset:
        scope = form["label_scope"]
        parts.append(
            "\n"
            '  <fieldset class="param-group label-group">\n'
            f"    <legend>{gettext('Label')}</legend>\n"
            f"    {check_html(form['add_label'])}\n"
            '    <div class="label-choice" id="label-choice">\n'
            f"      {field_html(form['label'])}\n"
            f'      <div class="field{" has-error" if scope.errors else ""}">\n'
            f'        <span class="field-label">{_text(scope.label)}</span>\n'
            '        <div class="radio-list radio-inline">'
            f"{_radios(scope)}</div>\n"
            f"        {_error_div(scope)}\n"
            "      </div>\n"
            "    </div>\n"
            "  </fieldset>\n  "
        )
    left_out = ""
    if anonymize_left_out:
        text = ngettext(
            "Anonymized, %(counter)s instance will be left out: a document, or an "
            "image that may show text in its pixels, cannot be anonymized.",
            "Anonymized, %(counter)s instances will be left out: documents, or "
            "images that may show text in their pixels, cannot be anonymized.",
            anonymize_left_out,
        ) % {"counter": _text(anonymize_left_out)}
        left_out = (
            '<p class="field-help muted small left-out-note" '
            f'id="anonymize-left-out">{text}</p>'
        )
    parts.append(
        "\n\n"
        '  <fieldset class="param-group">\n'
        f"    <legend>{gettext('Options')}</legend>\n"
        '    <div class="option-list">\n'
        f"      {check_html(form['urgent'])}\n"
        f"      {check_html(form['anonymize'])}\n"
        f"      {check_html(form['allow_further_sharing'])}\n"
        "    </div>\n"
        f"    {left_out}\n"
        f"    {field_html(form['message'])}\n"
        "  </fieldset>\n"
        "</section>\n"
    )
    return _safe("".join(parts))
