"""The wizard forms' renderer: Django's widget and error-list templates, in Python.

A wizard page renders some twenty widgets and error lists; through the template
engine each costs a template lookup, a context and nested includes (input.html
inside radio_option.html inside multiple_input.html...), together more than a
third of the parameters page. `WizardFormRenderer` builds the same markup, byte
for byte, for the templates the wizard's forms use (inputs, textareas, selects,
radio lists, error lists, an all-hidden form) and leaves any other template,
or a context it does not know, to Django's templates. Every value goes through
the same escaping and localization as the templates' ``{{ }}`` (see `_text` and
`_formatted`). tests/sharing/test_wizard_rendering.py compares both renderers on
every widget and page of the wizard.
"""

from html import escape as _escape

from django.forms.renderers import DjangoTemplates
from django.template.base import render_value_in_context
from django.template.context import Context
from django.utils.html import escape
from django.utils.safestring import SafeData

_WIDGETS = "django/forms/widgets/"
_CONTEXT = Context()  # autoescape on, localization as a template's


def _text(value):
    """``{{ value }}``: localized, then escaped unless already safe."""
    if isinstance(value, SafeData):
        return str(value)
    if type(value) is str:  # the common case, as render_value_in_context does it
        return _escape(value)
    return render_value_in_context(value, _CONTEXT)


def _formatted(value):
    """``{{ value|stringformat:'s' }}``: "%s" (safe input stays safe), escaped."""
    if isinstance(value, tuple):
        value = str(value)
    text = "%s" % value  # noqa: UP031  (what stringformat:"s" does)
    return text if isinstance(value, SafeData) else escape(text)


def _attrs(attrs):
    """django/forms/widgets/attrs.html."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {_text(name)}")
        else:
            parts.append(f' {_text(name)}="{_formatted(value)}"')
    return "".join(parts)


def _input(widget):
    """django/forms/widgets/input.html (with the file's final newline)."""
    value = ""
    if widget["value"] is not None:
        value = f' value="{_formatted(widget["value"])}"'
    return (
        f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"'
        f"{value}{_attrs(widget['attrs'])}>\n"
    )


def _input_option(widget):
    """django/forms/widgets/input_option.html."""
    if not widget.get("wrap_label"):
        return _input(widget) + "\n"
    label_id = widget["attrs"].get("id")
    label_for = f' for="{_text(label_id)}"' if label_id else ""
    return f"<label{label_for}>{_input(widget)} {_text(widget['label'])}</label>\n"


def _radio_option(widget):
    """django/forms/widgets/radio_option.html."""
    return _input_option(widget) + "\n"


def _select_option(widget):
    """django/forms/widgets/select_option.html."""
    return (
        f'<option value="{_formatted(widget["value"])}"'
        f"{_attrs(widget['attrs'])}>{_text(widget['label'])}</option>\n"
    )


_OPTIONS = {
    _WIDGETS + "radio_option.html": _radio_option,
    _WIDGETS + "select_option.html": _select_option,
}


def _option(option):
    build = _OPTIONS.get(option.get("template_name"))
    if build is None:
        raise _Unknown
    return build(option)


def _select(widget):
    """django/forms/widgets/select.html."""
    parts = [f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            parts.append("\n  " + _option(option))
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>\n")
    return "".join(parts)


def _multiple_input(widget):
    """django/forms/widgets/multiple_input.html (radio.html, checkbox_select.html)."""
    attrs = widget["attrs"]
    element_id = attrs.get("id")
    parts = ["<div"]
    if element_id:
        parts.append(f' id="{_text(element_id)}"')
    if attrs.get("class"):
        parts.append(f' class="{_text(attrs["class"])}"')
    parts.append(">")
    for group, options, _index in widget["optgroups"]:
        if group:
            parts.append(f"\n  <div><label>{_text(group)}</label>")
        for option in options:
            parts.append("<div>\n    " + _option(option) + "</div>")
        if group:
            parts.append("\n  </div>")
    parts.append("\n</div>\n")
    return "".join(parts)


def _textarea(widget):
    """django/forms/widgets/textarea.html."""
    value = _text(widget["value"]) if widget["value"] else ""
    return (
        f'<textarea name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>\n'
        f"{value}</textarea>\n"
    )


def _widget(build):
    def render(context):
        return build(context["widget"])

    return render


def _error_list(context):
    """django/forms/errors/list/default.html (ul.html)."""
    errors = context["errors"]
    if not errors:
        return ""
    field_id = getattr(errors, "field_id", None)
    error_id = f' id="{_text(field_id)}_error"' if field_id else ""
    items = "".join(f"<li>{_text(error)}</li>" for error in errors)
    return f'<ul class="{_text(context["error_class"])}"{error_id}>{items}</ul>'


def _hidden_form(context):
    """django/forms/div.html for a form of hidden fields without errors (the
    management forms); any other form is left to the template."""
    if context["fields"] or context["errors"]:
        raise _Unknown
    return "".join(str(field) for field in context["hidden_fields"])


_BUILDERS = {
    **{
        _WIDGETS + name: _widget(_input)
        for name in (
            "input.html",
            "text.html",
            "hidden.html",
            "checkbox.html",
            "date.html",
            "email.html",
            "number.html",
            "search.html",
            "tel.html",
            "url.html",
        )
    },
    _WIDGETS + "textarea.html": _widget(_textarea),
    _WIDGETS + "select.html": _widget(_select),
    _WIDGETS + "radio.html": _widget(_multiple_input),
    _WIDGETS + "multiple_input.html": _widget(_multiple_input),
    _WIDGETS + "radio_option.html": _widget(_radio_option),
    _WIDGETS + "input_option.html": _widget(_input_option),
    _WIDGETS + "select_option.html": _widget(_select_option),
    "django/forms/errors/list/default.html": _error_list,
    "django/forms/errors/list/ul.html": _error_list,
    "django/forms/div.html": _hidden_form,
    "django/forms/p.html": _hidden_form,
}


class _Unknown(Exception):
    """A context the Python builders do not cover: render the template."""


class WizardFormRenderer(DjangoTemplates):
    """Django's form templates, built in Python where the wizard uses them."""

    def render(self, template_name, context, request=None):
        build = _BUILDERS.get(template_name)
        if build is not None:
            try:
                return build(context).strip()
            except _Unknown:
                pass
        return super().render(template_name, context, request)


wizard_form_renderer = WizardFormRenderer()
