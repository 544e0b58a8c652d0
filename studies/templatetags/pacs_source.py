"""{% has_pacs_source as name %}: whether the user may search a department's PACS."""

from django import template

from ..models import DicomWebSource

register = template.Library()


@register.simple_tag(takes_context=True)
def has_pacs_source(context):
    user = getattr(context.get("request"), "user", None)
    if user is None or not user.is_authenticated or not user.department_ids:
        return False
    return DicomWebSource.objects.filter(department_id__in=user.department_ids).exists()
