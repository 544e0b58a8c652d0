"""The wizard's form renderer (sharing/wizard/rendering.py) gives exactly the
markup of Django's form templates: every widget, error list and management form
of the wizard's forms, in every state, and every wizard page as a whole, are
rendered with both and compared byte for byte."""

import re

import pytest
from django.forms.renderers import DjangoTemplates
from formtools.wizard.forms import ManagementForm

from recipients.models import Language
from sharing.models import Label
from sharing.wizard.forms import ParametersForm, RecipientFormSet, StudiesForm
from sharing.wizard.rendering import WizardFormRenderer, wizard_form_renderer
from tests.sharing.wizard_support import (
    in_days,
    key,
    parameters_data,
    post_step,
    recipients_data,
    run_until_parameters,
    step_url,
    world,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db

TEMPLATES = DjangoTemplates()
HOSTILE = "<b>\"quoted\" & 'single'</b>"


def markup(form):
    """Every piece of a form the wizard's templates show."""
    parts = [str(form.non_field_errors())]
    for field in form:
        parts += [str(field), str(field.errors)]
        parts += [widget.tag() for widget in field.subwidgets]
        parts += [widget.tag(wrap_label=True) for widget in field.subwidgets]
    return parts


def both(make):
    """Return (templates' markup, Python's markup) of the forms `make` builds."""
    return make(TEMPLATES), make(wizard_form_renderer)


def parameters_forms(world, renderer):  # noqa: F811
    department = world.department
    department.allow_unlimited = True
    department.max_validity_days = None
    kwargs = {
        "user": world.sender,
        "department": department,
        "recipient_kinds": ["user"],
        "renderer": renderer,
    }
    datas = [
        None,
        {},
        parameters_data(),
        parameters_data(reason="", valid_until="31/02/2027", access="images"),
        parameters_data(
            reason=HOSTILE,
            message=HOSTILE,
            valid_until=HOSTILE,
            language=HOSTILE,
            add_label="on",
            label="99999",
            label_scope=HOSTILE,
        ),
        parameters_data(unlimited="on", urgent="on", anonymize="on"),
    ]
    result = []
    for data in datas:
        prefixed = (
            None
            if data is None
            else {f"parameters-{name}": value for name, value in data.items()}
        )
        form = ParametersForm(prefixed, prefix="parameters", **kwargs)
        if form.is_bound:
            form.is_valid()
        result += markup(form)
    unbound = ParametersForm(
        prefix="parameters",
        initial={"access": "read", "language": Language.FR, "unlimited": True},
        **kwargs,
    )
    result += markup(unbound)
    return result


def test_the_parameters_form_renders_as_with_the_templates(world):  # noqa: F811
    Label.objects.create(department=world.department, name=HOSTILE)
    templates, python = both(lambda renderer: parameters_forms(world, renderer))
    assert python == templates


def test_the_recipients_and_studies_forms_render_as_with_the_templates(world):  # noqa: F811
    def make(renderer):
        parts = []
        for rows in ([], [(key(world.en), True, True, True), (HOSTILE, True)]):
            formset_class = type("F", (RecipientFormSet,), {"renderer": renderer})
            formset = formset_class(
                recipients_data(rows) if rows else None,
                prefix="recipients",
                max_recipients=1,
                sender=world.sender,
                form_kwargs={"defaults": {"require_otp": True}},
            )
            if formset.is_bound:
                formset.is_valid()
            parts += [str(formset.management_form), str(formset.non_form_errors())]
            for form in [*formset.forms, formset.empty_form]:
                parts += markup(form)
        for data in (None, {"studies-studies": ["1", HOSTILE]}):
            form = StudiesForm(
                data, prefix="studies", user=world.sender, renderer=renderer
            )
            if form.is_bound:
                form.is_valid()
            parts += markup(form)
        parts.append(
            str(
                ManagementForm(
                    prefix="share_wizard",
                    initial={"current_step": HOSTILE},
                    renderer=renderer,
                )
            )
        )
        return parts

    templates, python = both(make)
    assert python == templates


CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def page(client, method, url, data=None):
    response = getattr(client, method)(url, data or {})
    assert response.status_code == 200
    return CSRF.sub("csrf", response.content.decode())


def test_every_wizard_page_is_the_same_with_the_templates(
    client,
    world,  # noqa: F811
    monkeypatch,
):
    client.force_login(world.sender)
    rows = [(key(world.en), True, True), (key(world.fr),)]
    run_until_parameters(client, world.studies, rows)
    bad_recipients = {
        "share_wizard-current_step": "recipients",
        **recipients_data([(key(world.no_mobile), True, True), ("user:999999",)]),
    }
    bad_parameters = {
        "share_wizard-current_step": "parameters",
        **{
            f"parameters-{name}": value
            for name, value in parameters_data(
                reason=HOSTILE, valid_until=in_days(-3), add_label="on"
            ).items()
        },
    }
    requests = [
        ("get", step_url("studies"), None),
        ("get", step_url("recipients"), None),
        ("get", step_url("parameters"), None),
        ("post", step_url("recipients"), bad_recipients),
        ("post", step_url("parameters"), bad_parameters),
    ]

    def pages():
        shown = []
        for method, url, data in requests:
            shown.append(page(client, method, url, data))
        # The wizard is back on its parameters step with valid recipients.
        post_step(client, "recipients", recipients_data(rows))
        return shown

    python = pages()
    monkeypatch.setattr(WizardFormRenderer, "render", DjangoTemplates.render)
    templates = pages()
    assert python == templates
    assert 'name="parameters-reason"' in python[2]
    assert "errorlist" in python[3] and "errorlist" in python[4]
