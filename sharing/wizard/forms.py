"""The share wizard's forms: studies, recipients (a formset), parameters.

Each form validates one step completely on the server (item 8): whatever the
browser posts, an invalid value ends as an error at its field and nothing is
created. The context a step depends on (the sender, the source department, the
recipients, the bucket of a re-share) comes in through keyword arguments.
"""

import datetime
import re

from django import forms
from django.utils.translation import gettext_lazy as _

from recipients.entries import entries_for_keys, parse_key
from recipients.models import Language
from recipients.selectors import directory_entry_for_key, favorite_keys_of
from studies.models import Study
from studies.selectors import studies_visible_to, studies_with_left_out_count

from ..models import ACCESS_RANK, Access, Label, Share
from . import policy
from .rendering import wizard_form_renderer

DATE_INPUT_FORMAT = "%d/%m/%Y"
REASON_MAX_LENGTH = 1000
MESSAGE_MAX_LENGTH = Share._meta.get_field("message").max_length
# Study ids as the pages write them; more digits overflow the database's integers.
STUDY_ID_RE = re.compile(r"[0-9]{1,12}")
# The studies step lists at most this many of the posted or pre-selected studies.
MAX_SHOWN_STUDIES = 500


def directory_entry(key):
    """Resolve a recipient key ("user:12") through the directory; None if unknown."""
    if not isinstance(key, str) or len(key) > 64:
        return None
    return directory_entry_for_key(key=key)


def directory_entries(keys, *, sender=None):
    """Resolve many recipient keys in one go (a fixed number of queries): {key:
    entry}; malformed and unknown keys are left out. The sender's favorite
    groups and departments resolve even when they are not public."""
    parsed = [parse_key(key) for key in keys if isinstance(key, str) and len(key) <= 64]
    parsed = [kind_pk for kind_pk in parsed if kind_pk is not None]
    private_ok = frozenset()
    if sender is not None and any(kind != "user" for kind, _pk in parsed):
        private_ok = favorite_keys_of(user=sender)
    entries = entries_for_keys(parsed, private_ok=private_ok)
    return {entry.key: entry for entry in entries}


class StudyChoiceField(forms.ModelMultipleChoiceField):
    """Studies by id; an id that is no database integer is an invalid choice."""

    def _check_values(self, value):
        for pk in value:
            if not STUDY_ID_RE.fullmatch(str(pk)):
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                )
        # Django's check from here on, without its probe queryset per id (built
        # to catch ids the database cannot take, which the pattern above refuses).
        value = frozenset(value)
        queryset = self.queryset.filter(pk__in=value)
        pks = {str(study.pk) for study in queryset}
        for pk in value:
            if str(pk) not in pks:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
        return queryset


class StudiesForm(forms.Form):
    """Step 1: one or more studies, all from one source department (rule 1)."""

    default_renderer = wizard_form_renderer

    studies = StudyChoiceField(
        label=_("Studies"),
        queryset=Study.objects.none(),
        widget=forms.MultipleHiddenInput,
        error_messages={
            "required": _("Select at least one study to share."),
            "invalid_choice": _("You may not share one of these studies."),
            "invalid_pk_value": _("You may not share one of these studies."),
        },
    )

    def __init__(self, *args, user, parent_bucket=None, left_out=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.parent_bucket = parent_bucket
        if parent_bucket is not None:
            queryset = parent_bucket.share.studies.all()
        else:
            queryset = studies_visible_to(user=user)
        queryset = queryset.select_related("patient", "department")
        # The count of instances an anonymized share leaves out (a correlated
        # subquery) only where a page shows it: `left_out=False` skips it.
        if left_out:
            queryset = studies_with_left_out_count(queryset)
        self.fields["studies"].queryset = queryset

    def clean_studies(self):
        studies = list(self.cleaned_data["studies"])
        if len({study.department_id for study in studies}) > 1:
            raise forms.ValidationError(
                _("Share studies of one source department at a time."),
                code="two_sources",
            )
        return studies

    def chosen_studies(self):
        """Return the studies to list on the page: those posted or pre-selected."""
        if self.is_bound:
            raw = self.data.getlist(self.add_prefix("studies"))
            if len(raw) <= MAX_SHOWN_STUDIES and self.is_valid():
                # The validation's query already read exactly these studies.
                return list(self.cleaned_data["studies"])
        else:
            raw = self.initial.get("studies") or []
        ids = [int(v) for v in raw if STUDY_ID_RE.fullmatch(str(v))][:MAX_SHOWN_STUDIES]
        return list(self.fields["studies"].queryset.filter(pk__in=ids))


class RecipientForm(forms.Form):
    """One recipient and its options (rule 3) and the favorites star (rule 4)."""

    default_renderer = wizard_form_renderer

    key = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)
    require_otp = forms.BooleanField(
        label=_("Two-factor authentication"), required=False
    )
    send_mail = forms.BooleanField(label=_("Send mail"), required=False)
    star = forms.BooleanField(label=_("Add to favorites"), required=False)

    def __init__(self, *args, defaults=None, resolve=None, **kwargs):
        super().__init__(*args, **kwargs)
        # The sender's last options preset every row, also those added later.
        for name, value in (defaults or {}).items():
            self.fields[name].initial = value
        # The formset resolves the keys of all its rows at once (see below).
        self.resolve = resolve or directory_entry

    def clean_key(self):
        key = self.cleaned_data["key"].strip()
        if not key:
            return ""
        entry = self.resolve(key)
        if entry is None:
            raise forms.ValidationError(
                _("This recipient is unknown."), code="unknown_recipient"
            )
        self.entry = entry
        return key

    def clean(self):
        cleaned = super().clean()
        entry = getattr(self, "entry", None)
        if entry is None:
            return cleaned
        if cleaned.get("require_otp") and not entry.has_mobile:
            self.add_error(
                "require_otp",
                forms.ValidationError(
                    _(
                        "%(name)s has no registered mobile number: two-factor "
                        "authentication is not possible."
                    ),
                    code="no_mobile",
                    params={"name": entry.name},
                ),
            )
        if cleaned.get("send_mail") and not entry.has_email:
            self.add_error(
                "send_mail",
                forms.ValidationError(
                    _("%(name)s has no e-mail address: no mail can be sent."),
                    code="no_email",
                    params={"name": entry.name},
                ),
            )
        return cleaned


class BaseRecipientFormSet(forms.BaseFormSet):
    """The recipients step: between one and the department's maximum recipients."""

    def __init__(self, *args, max_recipients=3, sender=None, **kwargs):
        self.max_recipients = max_recipients
        self.sender = sender
        self._entries = None
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "resolve": self.entry_for}

    def entry_for(self, key):
        """Return the directory entry of a row's key; the keys of every posted row
        are resolved together on the first call, so a page costs the same few
        queries however many recipients it shows."""
        if self._entries is None:
            keys = []
            if self.is_bound:
                keys = [
                    str(self.data.get(f"{self.prefix}-{index}-key", "")).strip()
                    for index in range(self.total_form_count())
                ]
            self._entries = directory_entries(keys, sender=self.sender)
        return self._entries.get(key)

    def clean(self):
        if any(self.errors):
            return
        keys = [form.cleaned_data.get("key") for form in self.forms]
        keys = [key for key in keys if key]
        if not keys:
            raise forms.ValidationError(
                _("Choose at least one recipient."), code="no_recipient"
            )
        if len(keys) > self.max_recipients:
            raise forms.ValidationError(
                _("You can share with at most %(max)d recipients at a time."),
                code="too_many_recipients",
                params={"max": self.max_recipients},
            )
        if len(set(keys)) != len(keys):
            raise forms.ValidationError(
                _("A recipient is chosen twice."), code="duplicate_recipient"
            )

    def chosen(self):
        """Return (entry, options) for every filled row, in order."""
        return [
            (form.entry, form.cleaned_data)
            for form in self.forms
            if form.cleaned_data.get("key")
        ]


RecipientFormSet = forms.formset_factory(
    RecipientForm,
    formset=BaseRecipientFormSet,
    extra=0,
    # The department's maximum is checked in clean(); this only bounds the work.
    max_num=50,
    absolute_max=50,
    renderer=wizard_form_renderer,
)


class _CachedChoiceIterator(forms.models.ModelChoiceIterator):
    """Iterate the field's queryset itself (one query, then its result cache), not
    queryset.iterator(), which on PostgreSQL opens a server-side cursor (DECLARE,
    FETCH, CLOSE) and queries again for every rendering."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


class LabelChoiceField(forms.ModelChoiceField):
    iterator = _CachedChoiceIterator


class DayMonthYearField(forms.DateField):
    """A dd/mm/yyyy date; a well-formed day that is not in the calendar
    (31/02/2027) is refused as such, not as a wrong format."""

    shape = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
    default_error_messages = {
        "invalid": _("Enter a date as dd/mm/yyyy."),
        "no_such_date": _("The date %(value)s does not exist."),
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime.date):
            return value
        text = str(value).strip()
        match = self.shape.fullmatch(text)
        if match is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        day, month, year = (int(part) for part in match.groups())
        try:
            return datetime.date(year, month, day)
        except ValueError:
            raise forms.ValidationError(
                self.error_messages["no_such_date"],
                code="no_such_date",
                params={"value": text},
            ) from None


# The parameters step's rules, also used for its initial values without a form.


def access_choices(recipient_kinds, parent_share=None):
    """Return the access choices offered: no "images only" for a user recipient
    (rule 5), never more than a re-sharer holds (rule 13)."""
    choices = [
        (value, label)
        for value, label in Access.choices
        if value != Access.IMAGES_ONLY or "user" not in recipient_kinds
    ]
    if parent_share is not None:
        ceiling = ACCESS_RANK[Access(parent_share.access)]
        choices = [(v, lbl) for v, lbl in choices if ACCESS_RANK[Access(v)] <= ceiling]
    return choices


def latest_valid_until(department, parent_share=None):
    """Return the latest date allowed: the department's maximum, the re-sharer's."""
    candidates = []
    if department is not None:
        candidates.append(policy.max_valid_until(department))
    if parent_share is not None:
        candidates.append(parent_share.valid_until)
    candidates = [c for c in candidates if c is not None]
    return min(candidates) if candidates else None


def default_valid_until(department, parent_share=None):
    """Return the validity a share starts with (rule 8), within the latest allowed."""
    if department is None:
        return None
    default = policy.default_valid_until(department)
    latest = latest_valid_until(department, parent_share)
    return min(default, latest) if latest is not None else default


class ParametersForm(forms.Form):
    """Step 3: access, reason, language, validity, consent, label and options."""

    default_renderer = wizard_form_renderer

    access = forms.ChoiceField(
        label=_("Access"), choices=Access.choices, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=_("Reason for sharing"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Registered, never shown to the recipients."),
        error_messages={"required": _("Give a reason for sharing.")},
    )
    language = forms.ChoiceField(
        label=_("Language of the mail"), choices=Language.choices
    )
    valid_until = DayMonthYearField(
        label=_("Valid till"),
        required=False,
        widget=forms.DateInput(
            format=DATE_INPUT_FORMAT,
            attrs={
                "placeholder": _("dd/mm/yyyy"),
                "inputmode": "numeric",
                "autocomplete": "off",
                "class": "date-text",
            },
        ),
        help_text=_("dd/mm/yyyy"),
    )
    unlimited = forms.BooleanField(label=_("Unlimited access"), required=False)
    patient_agreed = forms.BooleanField(
        label=_("Patient agreed"),
        error_messages={
            "required": _("Without the patient's agreement nothing can be shared.")
        },
    )
    add_label = forms.BooleanField(label=_("Add label"), required=False)
    label = LabelChoiceField(
        label=_("Label"), queryset=Label.objects.none(), required=False
    )
    label_scope = forms.ChoiceField(
        label=_("Label for"),
        choices=Share.LabelScope.choices,
        required=False,
        widget=forms.RadioSelect,
    )
    urgent = forms.BooleanField(label=_("Urgent"), required=False)
    anonymize = forms.BooleanField(
        label=_("Anonymize"),
        required=False,
        help_text=_(
            "The first name is replaced by a number, the last name by "
            "“Anonymous”. The report is never accessible, whatever the access "
            "chosen above."
        ),
    )
    allow_further_sharing = forms.BooleanField(
        label=_("Allow further sharing"), required=False
    )
    message = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("In the mail and in the exam, as a separate series."),
    )

    def __init__(
        self,
        *args,
        user,
        department=None,
        recipient_kinds=(),
        parent_bucket=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.user = user
        self.department = department
        self.recipient_kinds = tuple(recipient_kinds)
        self.parent_bucket = parent_bucket
        self.parent_share = parent_bucket.share if parent_bucket else None

        # Only the allowed choices are offered; any other value is still known to
        # the field so that clean_access() can say why it is refused.
        self.fields["access"].widget.choices = self.access_choices()
        if department is not None:
            # The department's labels, for its members only; a filter rather than
            # a membership query here, so building the form costs no query.
            self.fields["label"].queryset = department.labels.filter(
                department__memberships__user=user
            )
        if not self.offers_unlimited():
            del self.fields["unlimited"]
        else:
            self._prepare_unlimited()
        if self.parent_share is not None and self.parent_share.anonymize:
            # The re-sharer only holds anonymized data: so will the recipient.
            self.fields["anonymize"].disabled = True
            self.fields["anonymize"].initial = True
            self.fields["anonymize"].help_text = _(
                "These studies were shared with you anonymized."
            )
        latest = self.latest_valid_until()
        if latest is not None:
            self.fields["valid_until"].help_text = _(
                "dd/mm/yyyy, at the latest %(date)s"
            ) % {"date": latest.strftime(DATE_INPUT_FORMAT)}

    # The rules the choices and checks follow.

    def access_choices(self):
        return access_choices(self.recipient_kinds, self.parent_share)

    def offers_unlimited(self):
        """Unlimited only where the department allows it and sets no maximum."""
        if self.department is None or not self.department.allow_unlimited:
            return False
        if self.department.max_validity_days is not None:
            return False
        return self.parent_share is None or self.parent_share.valid_until is None

    def unlimited_chosen(self):
        if self.is_bound:
            return self["unlimited"].data
        return bool(self.initial.get("unlimited"))

    def _prepare_unlimited(self):
        """With Unlimited ticked the date does not apply: show none. The page's
        script empties the date when Unlimited is ticked and puts the default
        back when it is unticked."""
        default = self.default_valid_until()
        attrs = self.fields["valid_until"].widget.attrs
        attrs["data-default"] = default.strftime(DATE_INPUT_FORMAT) if default else ""
        attrs["data-no-end"] = _("No end date")
        attrs["data-placeholder"] = attrs.get("placeholder", "")
        if not self.unlimited_chosen():
            return
        if self.is_bound:
            self.data = self.data.copy()
            self.data.pop(self.add_prefix("valid_until"), None)
        else:
            self.initial["valid_until"] = None
        attrs.update({"disabled": True, "placeholder": _("No end date")})

    def latest_valid_until(self):
        return latest_valid_until(self.department, self.parent_share)

    def default_valid_until(self):
        return default_valid_until(self.department, self.parent_share)

    # Field checks.

    def clean_access(self):
        access = self.cleaned_data["access"]
        if access == Access.IMAGES_ONLY and "user" in self.recipient_kinds:
            raise forms.ValidationError(
                _("'Images only' is not available when sharing with a user."),
                code="images_only_user",
            )
        if self.parent_share is not None and (
            ACCESS_RANK[Access(access)] > ACCESS_RANK[Access(self.parent_share.access)]
        ):
            raise forms.ValidationError(
                _("You cannot give more access than you were given."),
                code="more_than_parent",
            )
        return access

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(
                _("Give a reason for sharing."), code="required"
            )
        return reason

    def clean_message(self):
        return self.cleaned_data["message"].strip()

    def clean_valid_until(self):
        valid_until = self.cleaned_data["valid_until"]
        if valid_until is None or self.department is None:
            return valid_until
        if valid_until < policy.department_today(self.department):
            raise forms.ValidationError(_("This date is in the past."), code="past")
        latest = self.latest_valid_until()
        if latest is not None and valid_until > latest:
            raise forms.ValidationError(
                _("The latest possible date is %(date)s."),
                code="beyond_maximum",
                params={"date": latest.strftime(DATE_INPUT_FORMAT)},
            )
        return valid_until

    def clean(self):
        cleaned = super().clean()
        if self.department is None:
            raise forms.ValidationError(
                _("Choose the studies and recipients first."), code="no_context"
            )
        unlimited = cleaned.get("unlimited", False)
        if (
            self.data.get(self.add_prefix("unlimited"))
            and "unlimited" not in self.fields
        ):
            self.add_error(
                "valid_until",
                forms.ValidationError(
                    _("Unlimited access is not allowed for these studies."),
                    code="unlimited_not_allowed",
                ),
            )
        elif unlimited:
            cleaned["valid_until"] = None
            self.errors.pop("valid_until", None)
        elif not cleaned.get("valid_until") and "valid_until" not in self.errors:
            self.add_error(
                "valid_until",
                forms.ValidationError(
                    _("Enter a date as dd/mm/yyyy."), code="required"
                ),
            )
        if cleaned.get("add_label"):
            if not cleaned.get("label") and "label" not in self.errors:
                self.add_error("label", _("Choose a label."))
            if not cleaned.get("label_scope"):
                self.add_error("label_scope", _("Choose for whom the label is."))
        else:
            cleaned["label"] = None
            cleaned["label_scope"] = ""
        return cleaned
