"""The share wizard: studies → recipients → parameters, then the confirmation.

A NamedUrlSessionWizardView gives each step its own URL, so the browser's back
button and the wizard's "previous" both work. The wizard is started by
`share_start` (the overview's selection), `reshare_start` (a received bucket
that allows further sharing) or `share_again` (the confirmation pop-up); each
puts its context in the wizard's session storage and redirects to a step.
"""

from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET
from formtools.wizard.storage import get_storage
from formtools.wizard.views import NamedUrlSessionWizardView, WizardView

from ..access.guard import bucket_view, check_reshare, get_bucket_for_reshare
from ..models import Access, Pseudonym, SenderPreferences, Share
from . import policy
from .forms import STUDY_ID_RE, ParametersForm, RecipientFormSet, StudiesForm
from .info import share_info, share_info_text
from .services import ShareRecipient, share_create

STEP_STUDIES = "studies"
STEP_RECIPIENTS = "recipients"
STEP_PARAMETERS = "parameters"
STEP_TITLES = {
    STEP_STUDIES: _("Studies"),
    STEP_RECIPIENTS: _("Recipients"),
    STEP_PARAMETERS: _("Parameters"),
}
MAX_PRESELECTED_STUDIES = 200


class ShareWizard(LoginRequiredMixin, NamedUrlSessionWizardView):
    form_list = [
        (STEP_STUDIES, StudiesForm),
        (STEP_RECIPIENTS, RecipientFormSet),
        (STEP_PARAMETERS, ParametersForm),
    ]
    templates = {
        STEP_STUDIES: "sharing/wizard/studies.html",
        STEP_RECIPIENTS: "sharing/wizard/recipients.html",
        STEP_PARAMETERS: "sharing/wizard/parameters.html",
    }

    def get_template_names(self):
        return [self.templates[self.steps.current]]

    # The context the steps share.

    @property
    def parent_bucket(self):
        """Return the bucket being re-shared, checked again on every request."""
        if not hasattr(self, "_parent_bucket"):
            bucket_id = self.storage.extra_data.get("parent_bucket_id")
            self._parent_bucket = (
                None
                if bucket_id is None
                else get_bucket_for_reshare(self.request, bucket_id)
            )
        return self._parent_bucket

    def valid_form(self, step):
        """Return the stored form of an earlier step if it is valid, else None."""
        cache = self.__dict__.setdefault("_valid_forms", {})
        if step not in cache:
            data = self.storage.get_step_data(step)
            form = None
            if data is not None:
                form = self.get_form(step=step, data=data)
                if not form.is_valid():
                    form = None
            cache[step] = form
        return cache[step]

    def source_department(self):
        form = self.valid_form(STEP_STUDIES)
        return form.cleaned_data["studies"][0].department if form else None

    def chosen_recipients(self):
        formset = self.valid_form(STEP_RECIPIENTS)
        return formset.chosen() if formset else []

    def sender_preferences(self):
        preferences = SenderPreferences.objects.filter(user=self.request.user).first()
        return preferences or SenderPreferences(user=self.request.user)

    def get_form_kwargs(self, step=None):
        user = self.request.user
        if step == STEP_STUDIES:
            return {"user": user, "parent_bucket": self.parent_bucket}
        if step == STEP_RECIPIENTS:
            department = self.source_department()
            defaults = {}
            # Only the recipients page shows the sender's last options; the other
            # steps merely validate the stored rows again (and skip the query).
            if self.steps.current == STEP_RECIPIENTS:
                preferences = self.sender_preferences()
                defaults = {
                    "require_otp": preferences.require_otp,
                    "send_mail": preferences.send_mail,
                }
            return {
                "max_recipients": department.max_recipients if department else 0,
                "form_kwargs": {"defaults": defaults},
            }
        department = self.source_department()
        recipients = self.chosen_recipients()
        return {
            "user": user,
            "department": department if recipients else None,
            "recipient_kinds": [entry.kind for entry, _ in recipients],
            "parent_bucket": self.parent_bucket,
        }

    def get_form_initial(self, step):
        if step == STEP_STUDIES:
            return {"studies": self.storage.extra_data.get("initial_studies", [])}
        if step == STEP_RECIPIENTS:
            return [{}]  # one empty row to start with
        form_kwargs = self.get_form_kwargs(STEP_PARAMETERS)
        probe = ParametersForm(**form_kwargs)
        # Groups and departments have no language of their own: users decide.
        languages = [e.language for e, _ in self.chosen_recipients() if e.language]
        offered = dict(probe.access_choices())
        initial = {
            "access": Access.IMAGES_READ
            if Access.IMAGES_READ in offered
            else next(iter(offered), ""),
            "language": policy.mail_language(languages) or self.request.user.language,
            "valid_until": probe.default_valid_until(),
        }
        return initial

    # Navigation.

    def get(self, request, *args, **kwargs):
        step = kwargs.get("step")
        if step == self.done_step_name:
            # A share is only made by the last step's POST, never by a GET.
            return redirect(self.get_step_url(self.steps.current or STEP_STUDIES))
        if step in self.get_form_list():
            for earlier in self.get_form_list():
                if earlier == step:
                    break
                if self.valid_form(earlier) is None:
                    self.storage.current_step = earlier
                    return redirect(self.get_step_url(earlier))
        return super().get(request, *args, **kwargs)

    def post(self, *args, **kwargs):
        # formtools trusts the posted step name; an unknown one would be a 500.
        posted = self.request.POST.get(f"{self.prefix}-current_step")
        if posted is not None and posted not in self.get_form_list():
            return HttpResponseBadRequest("Unknown wizard step.")
        return super().post(*args, **kwargs)

    def render_done(self, form, **kwargs):
        # Finish in the POST itself (the base class would redirect and finish on a
        # GET of the "done" URL); every step is validated again before done().
        return WizardView.render_done(self, form, **kwargs)

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        step = self.steps.current
        context.update(
            step_titles=[
                (name, STEP_TITLES[name], name == step) for name in self.get_form_list()
            ],
            parent_bucket=self.parent_bucket,
        )
        if step == STEP_STUDIES:
            studies = form.chosen_studies()
        else:
            studies_form = self.valid_form(STEP_STUDIES)
            studies = studies_form.cleaned_data["studies"] if studies_form else []
        context["chosen_studies"] = studies
        context["chosen_study_rows"] = study_rows(studies, self.parent_bucket)
        if step == STEP_RECIPIENTS:
            department = self.source_department()
            context.update(
                max_recipients=department.max_recipients if department else 0,
                rows=[(row, _row_entry(row)) for row in form.forms],
                empty_row=form.empty_form,
                quick_search_url=reverse("recipients:quick_search"),
                favorites_url=reverse("recipients:favorites_fragment"),
                detailed_search_url=reverse("recipients:detailed_search"),
            )
        if step == STEP_PARAMETERS:
            department = self.source_department()
            recipients = self.chosen_recipients()
            context.update(
                recipients=recipients,
                user_recipient=any(entry.kind == "user" for entry, _ in recipients),
                department=department,
                department_today=policy.department_today(department)
                if department
                else None,
                latest_valid_until=form.latest_valid_until(),
                anonymize_left_out=sum(s.anonymize_left_out for s in studies),
            )
        return context

    def done(self, form_list, form_dict, **kwargs):
        studies = form_dict[STEP_STUDIES].cleaned_data["studies"]
        parameters = form_dict[STEP_PARAMETERS].cleaned_data
        recipients = [
            ShareRecipient(
                kind=entry.kind,
                pk=entry.pk,
                require_otp=options["require_otp"],
                send_mail=options["send_mail"],
                star=options["star"],
            )
            for entry, options in form_dict[STEP_RECIPIENTS].chosen()
        ]
        share = share_create(
            sender=self.request.user,
            studies=studies,
            recipients=recipients,
            access=parameters["access"],
            reason=parameters["reason"],
            language=parameters["language"],
            valid_until=parameters["valid_until"],
            patient_agreed=parameters["patient_agreed"],
            label=parameters["label"],
            label_scope=parameters["label_scope"],
            urgent=parameters["urgent"],
            anonymize=parameters["anonymize"],
            allow_further_sharing=parameters["allow_further_sharing"],
            message=parameters["message"],
            parent_bucket=self.parent_bucket,
            request=self.request,
        )
        return redirect("sharing:share_done", share_id=share.pk)


def study_rows(studies, parent_bucket=None):
    """Return (study, patient name) rows; a re-sharer of anonymized data sees only
    the pseudonyms they were given."""
    hide = parent_bucket is not None and parent_bucket.share.anonymize
    rows = []
    for study in studies:
        if hide:
            pseudonym = Pseudonym.objects.for_patient(
                bucket=parent_bucket, patient=study.patient
            )
            name = pseudonym.full_name
        else:
            name = study.patient.full_name or study.patient.patient_id
        rows.append({"study": study, "patient_name": name})
    return rows


def _row_entry(form):
    """Return the directory entry a recipient row shows (posted or stored key)."""
    entry = getattr(form, "entry", None)
    if entry is not None:
        return entry
    key = form.data.get(form.add_prefix("key")) if form.is_bound else None
    return form.resolve(str(key).strip()) if key else None


def _wizard_storage(request):
    prefix = ShareWizard().get_prefix(request)
    return get_storage(ShareWizard.storage_name, prefix, request)


def _start(request, *, study_ids, parent_bucket=None, step=STEP_STUDIES):
    storage = _wizard_storage(request)
    storage.reset()
    storage.extra_data = {
        "initial_studies": study_ids,
        "parent_bucket_id": parent_bucket.pk if parent_bucket else None,
    }
    if step != STEP_STUDIES:
        storage.set_step_data(
            STEP_STUDIES,
            MultiValueDict({f"{STEP_STUDIES}-studies": [str(pk) for pk in study_ids]}),
        )
    storage.current_step = step
    return redirect("sharing:share_step", step=step)


@require_GET
@login_required
def share_start(request):
    """Start the wizard with the overview's chosen studies (?studies=1&studies=2)."""
    study_ids = []
    for value in request.GET.getlist("studies")[:MAX_PRESELECTED_STUDIES]:
        if STUDY_ID_RE.fullmatch(value) and int(value) not in study_ids:
            study_ids.append(int(value))
    return _start(request, study_ids=study_ids)


@require_GET
@bucket_view
def reshare_start(request, bucket):
    """Start the wizard on a received bucket's studies; 403 without the permission."""
    check_reshare(bucket)
    study_ids = list(bucket.share.studies.values_list("pk", flat=True))
    return _start(request, study_ids=study_ids, parent_bucket=bucket)


def _own_share(request, share_id):
    share = get_object_or_404(
        Share.objects.select_related("source_department", "label", "parent_bucket"),
        pk=share_id,
    )
    if share.sender_id != request.user.pk:
        raise Http404("No such share")
    return share


@require_GET
@login_required
def share_again(request, share_id):
    """Share the same studies again: back at the recipients step."""
    share = _own_share(request, share_id)
    parent_bucket = None
    if share.parent_bucket_id is not None:
        parent_bucket = get_bucket_for_reshare(request, share.parent_bucket_id)
    study_ids = list(share.studies.order_by("pk").values_list("pk", flat=True))
    return _start(
        request, study_ids=study_ids, parent_bucket=parent_bucket, step=STEP_RECIPIENTS
    )


@require_GET
@login_required
def share_done(request, share_id):
    """Show the confirmation pop-up of a share; only its sender sees it."""
    share = _own_share(request, share_id)
    context = share_info(share)
    context["info_text"] = share_info_text(context)
    return render(request, "sharing/wizard/done.html", context)
