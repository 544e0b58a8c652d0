"""Forms of the recipient directory."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import PhysicianNumber

KIND_CHOICES = [
    ("user", _("User")),
    ("group", _("Group")),
    ("department", _("Department")),
]


class DetailedSearchForm(forms.Form):
    """Detailed search: a kind of recipient, then criteria that all must match."""

    kind = forms.ChoiceField(
        label=_("Search for"),
        choices=KIND_CHOICES,
        initial="user",
        widget=forms.RadioSelect,
    )
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    scheme = forms.ChoiceField(
        label=_("Physician-number scheme"),
        choices=[("", _("Any scheme")), *PhysicianNumber.Scheme.choices],
        required=False,
    )
    number = forms.CharField(label=_("Physician number"), max_length=40, required=False)
    name = forms.CharField(
        label=_("Name of the group or department"), max_length=200, required=False
    )
    place = forms.CharField(label=_("City or postcode"), max_length=100, required=False)
    department = forms.CharField(label=_("Department"), max_length=200, required=False)

    CRITERIA = {
        "user": ("first_name", "last_name", "scheme", "number", "place", "department"),
        "group": ("name", "place"),
        "department": ("name", "place"),
    }

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind and not any(
            (cleaned.get(field) or "").strip() for field in self.CRITERIA[kind]
        ):
            raise forms.ValidationError(
                _("Fill in at least one criterion."), code="no_criteria"
            )
        return cleaned

    def criteria(self):
        """Return the selector's keyword arguments for the chosen kind."""
        kind = self.cleaned_data["kind"]
        return {
            "kind": kind,
            **{
                field: self.cleaned_data.get(field) or ""
                for field in self.CRITERIA[kind]
            },
        }
