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


class PacsSearchForm(forms.Form):
    """Search the department's PACS (its DICOMweb source): at least one criterion."""

    patient_id = forms.CharField(label=_("Patient ID"), required=False, max_length=64)
    patient_name = forms.CharField(
        label=_("Patient name"),
        required=False,
        max_length=64,
        help_text=_("The start of the last name is enough."),
    )
    accession_number = forms.CharField(
        label=_("Accession number"), required=False, max_length=16
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
    department = forms.TypedChoiceField(
        label=_("PACS of"), required=False, coerce=int, empty_value=None
    )

    CRITERIA = (
        "patient_id",
        "patient_name",
        "accession_number",
        "date_from",
        "date_to",
    )

    def __init__(self, *args, sources=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = {s.department_id: s for s in sources}
        self.fields["department"].choices = [
            (s.department_id, s.department.name) for s in sources
        ]
        if len(self.sources) < 2:
            self.fields["department"].widget = forms.HiddenInput()

    def _clean_text(self, name):
        # QIDO-RS takes * and ? as wildcards and \ as a value separator.
        value = self.cleaned_data[name].strip()
        if "\\" in value:
            raise forms.ValidationError(_("A backslash cannot be searched."))
        return value

    def clean_patient_id(self):
        return self._clean_text("patient_id")

    def clean_patient_name(self):
        return self._clean_text("patient_name")

    def clean_accession_number(self):
        return self._clean_text("accession_number")

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end date is before the start date."))
        if not self.errors and not any(cleaned.get(n) for n in self.CRITERIA):
            raise forms.ValidationError(
                _("Fill in at least one of patient ID, name, accession number or date.")
            )
        return cleaned

    @property
    def source(self):
        """Return the source searched: the one chosen, or the user's only one."""
        chosen = getattr(self, "cleaned_data", {}).get("department")
        if chosen in self.sources:
            return self.sources[chosen]
        return next(iter(self.sources.values()), None)

    def criteria(self):
        return {name: self.cleaned_data.get(name) for name in self.CRITERIA}

    @property
    def visible_criteria(self):
        return [self[name] for name in self.CRITERIA]
