"""The wizard's fields and study labels, built in Python (sharing/wizard/markup.py)."""

from django import template

from sharing.wizard import markup

register = template.Library()


@register.filter(is_safe=True)
def wizard_field(field):
    """A labelled field with its help and errors."""
    return markup.field_html(field)


@register.filter(is_safe=True)
def wizard_check(field):
    """A checkbox in its label, with its help and errors."""
    return markup.check_html(field)


@register.filter(is_safe=True)
def study_label(row):
    """A chosen study: patient, date, description."""
    return markup.study_label_html(row)
