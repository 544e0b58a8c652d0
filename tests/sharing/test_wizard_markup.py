"""The wizard's fields, study labels and recipient rows built in Python
(sharing/wizard/markup.py) give exactly the markup of the templates they replaced,
kept here as the reference, in every state the wizard shows them."""

import datetime
import re

import pytest
from django.template import Context, RequestContext, Template
from django.template.loader import get_template
from django.utils import translation

from recipients.entries import DirectoryEntry
from sharing.models import Label
from sharing.wizard import markup
from sharing.wizard.forms import ParametersForm, RecipientFormSet
from tests.factories import UserGroupFactory
from tests.sharing.wizard_support import (
    in_days,
    key,
    parameters_data,
    recipients_data,
    run_until_parameters,
    step_url,
    world,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db

HOSTILE = "<b>\"quoted\" & 'single'</b>"

# The templates as they were (sharing/wizard/_<name>.html).
FIELD_HTML = '<div class="field field-{{ field.name }}{% if field.errors %} has-error{% endif %}">\n  <label for="{{ field.id_for_label }}">{{ field.label }}</label>\n  {{ field }}\n  {% if field.help_text %}<p class="field-help muted small" id="{{ field.auto_id }}_helptext">{{ field.help_text }}</p>{% endif %}\n  {% if field.errors %}<div class="field-error" role="alert">{{ field.errors }}</div>{% endif %}\n</div>\n'  # noqa: E501
CHECK_HTML = '<div class="check field-{{ field.name }}{% if field.errors %} has-error{% endif %}">\n  <label class="check-label">{{ field }} <span>{{ field.label }}</span></label>\n  {% if field.help_text %}<p class="field-help muted small">{{ field.help_text }}</p>{% endif %}\n  {% if field.errors %}<div class="field-error" role="alert">{{ field.errors }}</div>{% endif %}\n</div>\n'  # noqa: E501
STUDY_LABEL_HTML = '{% load i18n %}<span class="study-patient">{{ row.patient_name }}</span> <span class="muted">· {{ row.study.study_date|date:"d/m/Y"|default:"?" }} · {{ row.study.description|default:row.study.modalities }}</span>\n'  # noqa: E501
RECIPIENT_ROW_HTML = '{% load i18n %}<li class="recipient-row" data-row data-has-mobile="{% if entry.has_mobile %}true{% else %}false{% endif %}" data-has-email="{% if entry.has_email %}true{% else %}false{% endif %}">\n  <div class="recipient-head">\n    <span class="recipient-index" aria-hidden="true"></span>\n    <div class="recipient-pick"{% if entry %} hidden{% endif %}>\n      <label for="{{ form.prefix }}-query">{% translate "Recipient" %}</label>\n      <div class="recipient-search">\n        <input type="search" id="{{ form.prefix }}-query" class="recipient-query" autocomplete="off"\n               placeholder="{% translate \'First or last name, physician number, public e-mail or mobile\' %}"\n               aria-controls="{{ form.prefix }}-results" aria-describedby="{{ form.prefix }}-search-help">\n        <button type="button" class="icon-button favorites-toggle" aria-expanded="false" aria-controls="{{ form.prefix }}-favorites" title="{% translate \'Favorites\' %}">\n          <span aria-hidden="true">★</span><span class="visually-hidden">{% translate "Favorites" %}</span>\n        </button>\n        <button type="button" class="icon-button detailed-search-open" title="{% translate \'Detailed search\' %}">\n          <span aria-hidden="true">⌕</span><span class="visually-hidden">{% translate "Detailed search" %}</span>\n        </button>\n      </div>\n      <p class="visually-hidden" id="{{ form.prefix }}-search-help">{% translate "Type at least two characters; the results appear below. Press Tab to reach them." %}</p>\n      <div class="picker-list recipient-favorites" id="{{ form.prefix }}-favorites" hidden></div>\n      <div class="picker-list recipient-results" id="{{ form.prefix }}-results" aria-live="polite"></div>\n    </div>\n    <div class="recipient-chosen"{% if not entry %} hidden{% endif %}>\n      <span class="recipient-name">{{ entry.name }}</span>\n      <span class="recipient-details muted small">{{ entry.details }}</span>\n      <button type="button" class="link recipient-change">{% translate "Change" %}</button>\n    </div>\n    <button type="button" class="button button-quiet button-small recipient-remove">{% translate "Remove" %}</button>\n  </div>\n  {{ form.key }}\n  {% if form.key.errors %}<div class="field-error" role="alert">{{ form.key.errors }}</div>{% endif %}\n  <div class="recipient-options">\n    <div class="check{% if form.require_otp.errors %} has-error{% endif %}">\n      <label class="check-label">{{ form.require_otp }} <span>{{ form.require_otp.label }}</span></label>\n      <span class="option-note muted small" data-note="otp"{% if not entry or entry.has_mobile %} hidden{% endif %}>{% translate "No registered mobile number" %}</span>\n      {% if form.require_otp.errors %}<div class="field-error" role="alert">{{ form.require_otp.errors }}</div>{% endif %}\n    </div>\n    <div class="check{% if form.send_mail.errors %} has-error{% endif %}">\n      <label class="check-label">{{ form.send_mail }} <span>{{ form.send_mail.label }}</span></label>\n      <span class="option-note muted small" data-note="mail"{% if not entry or entry.has_email %} hidden{% endif %}>{% translate "No e-mail address" %}</span>\n      {% if form.send_mail.errors %}<div class="field-error" role="alert">{{ form.send_mail.errors }}</div>{% endif %}\n    </div>\n    <span class="option-note muted small" data-note="favorite" hidden>★ {% translate "Favorite" %}</span>\n    <div class="check star">\n      <label class="check-label star-label" title="{% translate \'Added to your favorites once the share is done\' %}">{{ form.star }} <span class="star-icon" aria-hidden="true"></span><span>{{ form.star.label }}</span></label>\n    </div>\n  </div>\n</li>\n'  # noqa: E501


def template(text, **context):
    return Template(text).render(Context(context))


def parameters_forms(world):  # noqa: F811
    department = world.department
    department.allow_unlimited = True
    department.max_validity_days = None
    Label.objects.create(department=department, name=HOSTILE)
    kwargs = {"user": world.sender, "department": department, "recipient_kinds": []}
    forms = [ParametersForm(prefix="parameters", **kwargs)]
    for data in (
        {},
        parameters_data(),
        parameters_data(reason=HOSTILE, message=HOSTILE, add_label="on", label="0"),
    ):
        form = ParametersForm(
            {f"parameters-{name}": value for name, value in data.items()},
            prefix="parameters",
            **kwargs,
        )
        form.is_valid()
        forms.append(form)
    return forms


@pytest.mark.parametrize("language", ["en", "fr"])
def test_fields_and_checks_are_as_the_templates_gave_them(world, language):  # noqa: F811
    with translation.override(language):
        for form in parameters_forms(world):
            for field in form:
                assert markup.field_html(field) == template(FIELD_HTML, field=field)
                assert markup.check_html(field) == template(CHECK_HTML, field=field)


def test_study_labels_are_as_the_template_gave_them(world):  # noqa: F811
    study = world.studies[0]
    rows = [{"study": study, "patient_name": HOSTILE}]
    for date, description, modalities in [
        (datetime.date(2024, 3, 9), HOSTILE, "CT"),
        (None, "", "MR,<CT>"),
        (datetime.date(999, 12, 31), "", ""),
    ]:
        study.study_date, study.description, study.modalities = (
            date,
            description,
            modalities,
        )
        rows.append({"study": study, "patient_name": "Peeters, Marie"})
        for row in rows:
            assert markup.study_label_html(row) == template(STUDY_LABEL_HTML, row=row)


@pytest.mark.parametrize("language", ["en", "fr", "nl", "de"])
def test_recipient_rows_are_as_the_template_gave_them(world, language):  # noqa: F811
    entries = [
        DirectoryEntry(
            kind="user",
            pk=1,
            key="user:1",
            name=HOSTILE,
            details=HOSTILE,
            language="en",
            has_mobile=mobile,
            has_email=email,
        )
        for mobile, email in [(True, True), (False, False), (True, False)]
    ]
    with translation.override(language):
        for rows in ([], [(key(world.no_mobile), True, True), ("user:9", 1, 0, 1)]):
            formset = RecipientFormSet(
                recipients_data(rows) if rows else None,
                prefix="recipients",
                sender=world.sender,
                form_kwargs={"defaults": {"send_mail": True}},
            )
            if formset.is_bound:
                formset.is_valid()
            forms = [*formset.forms, formset.empty_form]
            for form in forms:
                for entry in [None, *entries]:
                    shown, _empty = markup.recipient_rows_html([(form, entry)], form)
                    expected = template(RECIPIENT_ROW_HTML, form=form, entry=entry)
                    assert shown == expected


# sharing/wizard/parameters.html as it was, rendered on the page's own context.
PARAMETERS_HTML = '{% extends "sharing/wizard/_layout.html" %}{% load i18n wizard_markup %}\n{% block step %}\n{% with form=wizard.form %}\n<section class="panel" aria-labelledby="step-title">\n  <h2 id="step-title">{% translate "Step 3: Parameters for sharing" %}</h2>\n  {% if form.errors and not form.non_field_errors %}<div class="alert alert-error" role="alert"><p>{% translate "Please correct the errors below." %}</p></div>{% endif %}\n  {% include "includes/form_errors.html" %}\n  <input type="hidden" name="{{ confirm_field }}" value="{{ confirm_digest }}">\n  <p class="muted small">{% translate "Recipients:" %}\n    {% for entry, options in recipients %}<strong>{{ entry.name }}</strong>{% if not forloop.last %}, {% endif %}{% endfor %}</p>\n  {% include "sharing/wizard/_not_mailed.html" %}\n\n  <fieldset class="param-group{% if form.access.errors %} has-error{% endif %}">\n    <legend>{% translate "Access" %}</legend>\n    <div class="radio-list">{% for radio in form.access %}<label class="check-label">{{ radio.tag }} <span>{{ radio.choice_label }}</span></label>{% endfor %}</div>\n    {% if form.access.errors %}<div class="field-error" role="alert">{{ form.access.errors }}</div>{% endif %}\n    {% if user_recipient %}<p class="field-help muted small">{% translate "“Images only” is not available when sharing with a user." %}</p>{% endif %}\n  </fieldset>\n\n  <div class="param-grid">\n    {{ form.reason|wizard_field }}\n    <div class="field field-language{% if form.language.errors %} has-error{% endif %}">\n      <label for="{{ form.language.id_for_label }}">{{ form.language.label }}</label>\n      {{ form.language }}\n      <p class="field-help muted small" id="language-reason" data-by-hand="{% translate \'Chosen by you.\' %}">{% if language_by_hand %}{% translate "Chosen by you." %}{% else %}{{ language_reason }}{% endif %}</p>\n      {% if form.language.errors %}<div class="field-error" role="alert">{{ form.language.errors }}</div>{% endif %}\n    </div>\n  </div>\n\n  <fieldset class="param-group{% if form.valid_until.errors %} has-error{% endif %}">\n    <legend>{% translate "Validity" %}</legend>\n    <div class="validity">\n      <div class="field field-valid_until">\n        <label for="{{ form.valid_until.id_for_label }}">{{ form.valid_until.label }}</label>\n        <div class="date-entry">\n          {{ form.valid_until }}\n          <input type="date" class="date-picker" id="{{ form.valid_until.id_for_label }}_picker"\n                 aria-label="{% translate \'Pick the date in a calendar\' %}"\n                 {% if department_today %}min="{{ department_today|date:\'Y-m-d\' }}"{% endif %}\n                 {% if latest_valid_until %}max="{{ latest_valid_until|date:\'Y-m-d\' }}"{% endif %} hidden>\n        </div>\n        <p class="field-help muted small">{{ form.valid_until.help_text }}.\n          {% if department %}{% blocktranslate with zone=department.time_zone %}Access ends at midnight at the end of that day ({{ zone }}).{% endblocktranslate %}{% endif %}</p>\n        {% if form.valid_until.errors %}<div class="field-error" role="alert">{{ form.valid_until.errors }}</div>{% endif %}\n      </div>\n      {% if form.unlimited %}{{ form.unlimited|wizard_check }}{% endif %}\n    </div>\n  </fieldset>\n\n  <fieldset class="param-group">\n    <legend>{% translate "Consent" %}</legend>\n    {{ form.patient_agreed|wizard_check }}\n    <p class="field-help muted small">{% translate "Without the patient\'s consent the study may not be shared." %}</p>\n  </fieldset>\n\n  {% if form.label.field.queryset %}\n  <fieldset class="param-group label-group">\n    <legend>{% translate "Label" %}</legend>\n    {{ form.add_label|wizard_check }}\n    <div class="label-choice" id="label-choice">\n      {{ form.label|wizard_field }}\n      <div class="field{% if form.label_scope.errors %} has-error{% endif %}">\n        <span class="field-label">{{ form.label_scope.label }}</span>\n        <div class="radio-list radio-inline">{% for radio in form.label_scope %}<label class="check-label">{{ radio.tag }} <span>{{ radio.choice_label }}</span></label>{% endfor %}</div>\n        {% if form.label_scope.errors %}<div class="field-error" role="alert">{{ form.label_scope.errors }}</div>{% endif %}\n      </div>\n    </div>\n  </fieldset>\n  {% endif %}\n\n  <fieldset class="param-group">\n    <legend>{% translate "Options" %}</legend>\n    <div class="option-list">\n      {{ form.urgent|wizard_check }}\n      {{ form.anonymize|wizard_check }}\n      {{ form.allow_further_sharing|wizard_check }}\n    </div>\n    {% if anonymize_left_out %}<p class="field-help muted small left-out-note" id="anonymize-left-out">{% blocktranslate count counter=anonymize_left_out %}Anonymized, {{ counter }} instance will be left out: a document, or an image that may show text in its pixels, cannot be anonymized.{% plural %}Anonymized, {{ counter }} instances will be left out: documents, or images that may show text in their pixels, cannot be anonymized.{% endblocktranslate %}</p>{% endif %}\n    {{ form.message|wizard_field }}\n  </fieldset>\n</section>\n{% endwith %}\n{% endblock %}\n'  # noqa: E501


CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def _as_the_template_gave_it(response):
    shown = response.context[0]  # the page's own template is rendered first
    context = RequestContext(response.wsgi_request, shown.flatten())
    old = Template(PARAMETERS_HTML).render(context)
    return CSRF.sub("csrf", old), CSRF.sub("csrf", response.content.decode())


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_parameters_step_is_as_the_template_gave_it(client, world, language):  # noqa: F811
    department = world.department
    department.allow_unlimited = True
    department.max_validity_days = None
    department.save()
    Label.objects.create(department=department, name=HOSTILE)
    group = UserGroupFactory(name=HOSTILE, is_public=True)
    group.members.add(world.no_email, world.en)
    client.force_login(world.sender)
    rows = [(key(world.en), True, True), (key(group), False, True)]
    run_until_parameters(client, world.studies, rows)
    url = step_url("parameters")
    posts = [
        None,
        parameters_data(reason=HOSTILE, valid_until=in_days(-3), add_label="on"),
        parameters_data(unlimited="on", anonymize="on", access="images"),
        parameters_data(valid_until="31/02/2027", language="fr", message=HOSTILE),
    ]
    with translation.override(language):
        for data in posts:
            if data is None:
                response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
            else:
                payload = {f"parameters-{name}": value for name, value in data.items()}
                payload["share_wizard-current_step"] = "parameters"
                payload["confirm"] = "not the digest"  # refused: the page again
                response = client.post(url, payload, HTTP_ACCEPT_LANGUAGE=language)
            assert response.status_code == 200
            old, new = _as_the_template_gave_it(response)
            assert new == old
        # The note on instances an anonymized share leaves out (1 and more).
        for count in (1, 3):
            assert_left_out_note_as_the_template_gave_it(response, count)


SHOWN = (
    "recipients",
    "not_mailed",
    "confirm_field",
    "confirm_digest",
    "user_recipient",
    "language_by_hand",
    "language_reason",
    "department",
    "department_today",
    "latest_valid_until",
)


def assert_left_out_note_as_the_template_gave_it(response, count):
    flat = response.context[0].flatten()
    shown = {name: flat[name] for name in SHOWN}
    flat.update(
        anonymize_left_out=count,
        step_html=markup.parameters_step_html(
            flat["wizard"]["form"], **shown, anonymize_left_out=count
        ),
    )
    request = response.wsgi_request
    new = get_template("sharing/wizard/parameters.html").render(flat, request)
    old = Template(PARAMETERS_HTML).render(RequestContext(request, flat))
    assert 'id="anonymize-left-out"' in new
    assert CSRF.sub("csrf", new) == CSRF.sub("csrf", old)
