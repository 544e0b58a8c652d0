from django import forms
from django.utils.translation import gettext_lazy as _


class OverviewFilterForm(forms.Form):
    """The overview's GET filters; every field is optional."""

    patient = forms.CharField(
        label=_("Patient name or ID"), required=False, max_length=100
    )
    date_from = forms.DateField(
        label=_("Study date from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label=_("Study date to"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    modality = forms.ChoiceField(label=_("Modality"), required=False)
    description = forms.CharField(
        label=_("Description"), required=False, max_length=100
    )

    def __init__(self, *args, modalities=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["modality"].choices = [("", _("Any"))] + [
            (m, m) for m in modalities
        ]

    def clean_patient(self):
        return self.cleaned_data["patient"].strip()

    def clean_description(self):
        return self.cleaned_data["description"].strip()

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filters(self):
        """Return the valid filters as keyword arguments for studies_filter()."""
        data = getattr(self, "cleaned_data", {})
        return {
            name: data[name]
            for name in ("patient", "date_from", "date_to", "modality", "description")
            if data.get(name)
        }

    @property
    def is_filtering(self):
        return bool(self.filters())
