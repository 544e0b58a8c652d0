"""The wizard's fields, study labels and recipient rows built in Python
(sharing/wizard/markup.py) give exactly the markup of the templates they replaced,
kept here as the reference, in every state the wizard shows them."""

import datetime

import pytest
from django.template import Context, Template
from django.utils import translation

from recipients.entries import DirectoryEntry
from sharing.models import Label
from sharing.wizard import markup
from sharing.wizard.forms import ParametersForm, RecipientFormSet
from tests.sharing.wizard_support import (
    key,
    parameters_data,
    recipients_data,
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
