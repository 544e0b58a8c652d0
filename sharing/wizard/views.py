"""The share wizard: studies → recipients → parameters, then the confirmation.

A NamedUrlSessionWizardView gives each step its own URL, so the browser's back
button and the wizard's "previous" both work. The wizard is started by
`share_start` (the overview's selection), `reshare_start` (a received bucket
that allows further sharing) or `share_again` (the confirmation pop-up); each
opens a new *run*, puts its context in that run's session storage and
redirects to a step under the run's URL (`share/wizard/<run>/<step>/`).

Two wizards in one login never mix (rule 20): every run keys its own formtools
storage, and the pages post to their run's URL. The confirming page carries a
digest of the studies and recipients it shows, and its POST is refused when the
run's stored steps no longer match it. A run makes at most one share: the share
records the run (unique per sender), so a resubmitted or double-clicked final
POST leads to the share already made. `share/wizard/<step>/` (no run) stands for
the session's latest run, for clients that do not follow the pages' URLs.
"""

import dataclasses
import json
import re
import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView
from formtools.wizard.forms import ManagementForm
from formtools.wizard.storage import get_storage
from formtools.wizard.views import (
    NamedUrlSessionWizardView,
    StepsHelper,
    WizardView,
)

from recipients.directory_version import directory_version
from recipients.entries import DirectoryEntry, members_without_email

from ..access.guard import bucket_view, check_reshare, get_bucket_for_reshare
from ..models import Access, Pseudonym, SenderPreferences, Share
from . import policy
from .forms import (
    STUDY_ID_RE,
    ParametersForm,
    RecipientFormSet,
    StudiesForm,
    access_choices,
    default_valid_until,
)
from .info import share_info, share_info_text
from .markup import parameters_step_html, recipient_rows_html
from .rendering import wizard_form_renderer
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

# The session's wizard runs: those still open (oldest first), and the latest one.
SESSION_RUNS_KEY = "sharing.wizard_runs"
SESSION_LATEST_RUN_KEY = "sharing.wizard_latest_run"
MAX_OPEN_RUNS = 8
RUN_RE = re.compile(r"[0-9a-f]{16}")
STORAGE_PREFIX = "share_wizard"
# The confirming page's digest travels in this (unprefixed) field.
CONFIRM_FIELD = "confirm"
# The run's extra data keeps the recipients step's resolved directory entries.
RESOLVED_KEY = "resolved_recipients"


def _storage_prefix(run):
    return f"{STORAGE_PREFIX}_{run}"


def _open_runs(request):
    return list(request.session.get(SESSION_RUNS_KEY, []))


def run_open(request):
    """Open a new wizard run in the session and return its id; the oldest open
    runs beyond MAX_OPEN_RUNS are dropped with their storage."""
    run = secrets.token_hex(8)
    runs = _open_runs(request) + [run]
    for old in runs[:-MAX_OPEN_RUNS]:
        request.session.pop(f"wizard_{_storage_prefix(old)}", None)
    request.session[SESSION_RUNS_KEY] = runs[-MAX_OPEN_RUNS:]
    request.session[SESSION_LATEST_RUN_KEY] = run
    return run


def run_close(request, run):
    """Close a run (its share is made); its storage goes once the response is made."""
    request.session[SESSION_RUNS_KEY] = [r for r in _open_runs(request) if r != run]


def run_step_url(run, step):
    return reverse("sharing:share_run_step", kwargs={"run": run, "step": step})


class ShareWizard(LoginRequiredMixin, NamedUrlSessionWizardView):
    # The session is written only when a step changed the run (not on each GET).
    storage_name = "sharing.wizard.storage.ChangedOnlySessionStorage"
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

    # The run: its own storage, its own URLs.

    def dispatch(self, request, *args, **kwargs):
        # formtools keys the storage with the management form's prefix; here the
        # management form keeps "share_wizard" and the storage is the run's.
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        run = kwargs.pop("run", None)
        self.run_in_url = run is not None
        if run is None:
            run = request.session.get(SESSION_LATEST_RUN_KEY)
            if run is None or (
                run not in _open_runs(request) and request.method != "POST"
            ):
                run = run_open(request)
        elif not RUN_RE.fullmatch(run):
            raise Http404("No such wizard run.")
        self.run = run
        if run not in _open_runs(request):
            return self.run_closed()
        self.prefix = self.get_prefix(request, *args, **kwargs)
        self.storage = get_storage(
            self.storage_name, _storage_prefix(run), request, None
        )
        self.steps = StepsHelper(self)
        response = TemplateView.dispatch(self, request, *args, **kwargs)
        self.storage.update_response(response)
        return response

    def run_closed(self):
        """Answer a request of a run that is over: its share, or a fresh start."""
        share = Share.objects.filter(
            sender=self.request.user, wizard_run=self.run
        ).first()
        if share is not None:
            return redirect("sharing:share_done", share_id=share.pk)
        messages.info(
            self.request,
            gettext("This share was left unfinished. Start again from the overview."),
        )
        return redirect("studies:overview")

    def get_step_url(self, step):
        if self.run_in_url:
            return run_step_url(self.run, step)
        return super().get_step_url(step)

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

    # Resolved rows kept between requests (issue 19): the GET of a later step
    # uses the recipients step's directory entries as resolved before while that
    # step's data and the directory's version are unchanged. Every check of the
    # step still runs (on the kept rows); a POST always resolves again, so the
    # final POST validates every step afresh before share_create.

    def get_form(self, step=None, data=None, files=None):
        form = super().get_form(step=step, data=data, files=files)
        recipients = (step or self.steps.current) == STEP_RECIPIENTS
        if recipients and data is not None and self.request.method == "GET":
            self._reuse_resolved(form, data)
        return form

    def _resolved_digest(self, data):
        version = directory_version()
        if version is None:
            return None
        posted = {key: data.getlist(key) for key in sorted(data)}
        shown = {"run": self.run, "user": self.request.user.pk, "data": posted}
        return salted_hmac(
            "sharing.wizard.resolved",
            json.dumps([shown, version], sort_keys=True, default=str),
        ).hexdigest()

    def _reuse_resolved(self, formset, data):
        kept = self.storage.extra_data.get(RESOLVED_KEY)
        digest = self._resolved_digest(data)
        if not kept or digest is None or kept.get("digest") != digest:
            formset.resolved_digest = digest  # kept once resolved (see valid_form)
            return
        formset._entries = {
            fields["key"]: DirectoryEntry(**fields) for fields in kept["entries"]
        }

    def _keep_resolved(self, formset, digest):
        if digest is None or formset._entries is None:
            return
        self.storage.extra_data[RESOLVED_KEY] = {
            "digest": digest,
            "entries": [dataclasses.asdict(e) for e in formset._entries.values()],
        }

    def process_step(self, form):
        data = super().process_step(form)
        if self.steps.current == STEP_RECIPIENTS and form.is_valid():
            self._keep_resolved(form, self._resolved_digest(data))
        return data

    def valid_form(self, step):
        """Return the stored form of an earlier step if it is valid, else None."""
        cache = self.__dict__.setdefault("_valid_forms", {})
        if step not in cache:
            data = self.storage.get_step_data(step)
            form = None
            if data is not None:
                form = self.get_form(step=step, data=data)
                valid = form.is_valid()
                digest = getattr(form, "resolved_digest", None)
                if valid and digest is not None:
                    self._keep_resolved(form, digest)
                if not valid:
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
            # Only the parameters page shows how many instances anonymizing
            # leaves out; a POST may end on that page (refused confirmation).
            shown = getattr(self, "shown_step", None) or self.steps.current
            left_out = shown == STEP_PARAMETERS or self.request.method != "GET"
            return {
                "user": user,
                "parent_bucket": self.parent_bucket,
                "left_out": left_out,
            }
        if step == STEP_RECIPIENTS:
            department = self.source_department()
            defaults = {}
            # Only the recipients page shows the sender's last options; the other
            # steps merely validate the stored rows again (and skip the query).
            shown = getattr(self, "shown_step", None) or self.steps.current
            if shown == STEP_RECIPIENTS:
                preferences = self.sender_preferences()
                defaults = {
                    "require_otp": preferences.require_otp,
                    "send_mail": preferences.send_mail,
                }
            return {
                "max_recipients": department.max_recipients if department else 0,
                "sender": user,
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
        parent_share = self.parent_bucket.share if self.parent_bucket else None
        offered = dict(access_choices(form_kwargs["recipient_kinds"], parent_share))
        initial = {
            "access": Access.IMAGES_READ
            if Access.IMAGES_READ in offered
            else next(iter(offered), ""),
            "language": self.automatic_language()[0],
            "valid_until": default_valid_until(form_kwargs["department"], parent_share),
        }
        # What was typed before "Previous" stays until the wizard ends (item 2);
        # a language the sender did not choose follows the recipients.
        draft = dict(self.storage.extra_data.get("drafts", {}).get(step, {}))
        if not draft.pop("language_by_hand", False):
            draft.pop("language", None)
        initial.update(draft)
        return initial

    def automatic_language(self):
        """Return the mail language the rule gives and why (rule 7)."""
        languages = [e.language for e, _ in self.chosen_recipients()]
        language, reason = policy.mail_language_choice(languages)
        if not language:
            return self.request.user.language, gettext(
                "Your own language: the recipients have none."
            )
        return language, reason

    def keep_typed(self, step):
        """Keep what the page of `step` posted, valid or not, for when it returns."""
        form = self.get_form(step=step, data=self.request.POST)
        if step == STEP_PARAMETERS:
            draft = {
                name: form[name].data
                for name in form.fields
                if form[name].data is not None
            }
            draft["language_by_hand"] = (
                draft.get("language") != self.automatic_language()[0]
            )
            drafts = self.storage.extra_data.setdefault("drafts", {})
            drafts[step] = draft
        elif form.is_valid():
            self.storage.set_step_data(step, self.process_step(form))

    def confirm_digest(self):
        """Return the digest of what the confirming page shows: studies, recipients
        and their options, the re-shared bucket; the posted parameters are the
        rest of what it shows."""
        studies_form = self.valid_form(STEP_STUDIES)
        shown = {
            "run": self.run,
            "studies": sorted(s.pk for s in studies_form.cleaned_data["studies"])
            if studies_form
            else [],
            "recipients": [
                [entry.key, bool(o["require_otp"]), bool(o["send_mail"])]
                for entry, o in self.chosen_recipients()
            ],
            "parent_bucket": self.storage.extra_data.get("parent_bucket_id"),
        }
        return salted_hmac(
            "sharing.wizard.confirm", json.dumps(shown, sort_keys=True)
        ).hexdigest()

    # Navigation.

    def get(self, request, *args, **kwargs):
        step = kwargs.get("step")
        self.shown_step = step  # before formtools moves the current step to it
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
        goto = self.request.POST.get("wizard_goto_step")
        if goto in self.get_form_list():
            if posted is not None:
                self.keep_typed(posted)
        elif posted == STEP_PARAMETERS and not self.confirms_what_is_stored():
            self.storage.current_step = STEP_PARAMETERS
            form = self.get_form(step=STEP_PARAMETERS, data=self.request.POST)
            form.is_valid()
            form.add_error(
                None,
                gettext(
                    "Nothing was shared: the studies or recipients changed (in "
                    "another tab or window) since this page was shown. Check "
                    "them below and press Share again."
                ),
            )
            return self.render(form)
        return super().post(*args, **kwargs)

    def confirms_what_is_stored(self):
        """Return whether the final POST confirms the run's stored steps.

        The pages always send the digest; a client posting to the run-less URL
        without one is only checked when it sends one.
        """
        digest = self.request.POST.get(CONFIRM_FIELD)
        if digest is None:
            return not self.run_in_url
        return constant_time_compare(digest, self.confirm_digest())

    def render_done(self, form, **kwargs):
        # Finish in the POST itself (the base class would redirect and finish on a
        # GET of the "done" URL); every step is validated again before done().
        response = WizardView.render_done(self, form, **kwargs)
        if self.run not in _open_runs(self.request):
            self.request.session.pop(f"wizard_{_storage_prefix(self.run)}", None)
        return response

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        step = self.steps.current
        # The wizard's own hidden field, rendered like the steps' forms.
        context["wizard"]["management_form"] = ManagementForm(
            prefix=self.prefix,
            initial={"current_step": step},
            renderer=wizard_form_renderer,
        )
        context.update(
            wizard_run=self.run,
            wizard_action=run_step_url(self.run, step),
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
            rows = [(row, _row_entry(row)) for row in form.forms]
            rows_html, empty_row_html = recipient_rows_html(rows, form.empty_form)
            context.update(
                max_recipients=department.max_recipients if department else 0,
                rows=rows,
                rows_html=rows_html,
                empty_row_html=empty_row_html,
                quick_search_url=reverse("recipients:quick_search"),
                favorites_url=reverse("recipients:favorites_fragment"),
                detailed_search_url=reverse("recipients:detailed_search"),
            )
        if step == STEP_PARAMETERS:
            department = self.source_department()
            recipients = self.chosen_recipients()
            language, language_reason = self.automatic_language()
            shown = {
                "recipients": recipients,
                "not_mailed": not_mailed_members(
                    [entry for entry, options in recipients if options["send_mail"]]
                ),
                "confirm_digest": self.confirm_digest(),
                "confirm_field": CONFIRM_FIELD,
                "language_reason": language_reason,
                "language_by_hand": form["language"].value() != language,
                "user_recipient": any(entry.kind == "user" for entry, _ in recipients),
                "department": department,
                "department_today": policy.department_today(department)
                if department
                else None,
                "latest_valid_until": form.latest_valid_until(),
                "anonymize_left_out": sum(s.anonymize_left_out for s in studies),
            }
            context.update(
                shown,
                step_html=parameters_step_html(form, **shown),
                # The page restores what this tab typed before Back (wizard.js).
                wizard_draft=not form.is_bound,
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
                otp_available=entry.has_mobile,
                mail_available=entry.has_email,
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
            wizard_run=self.run,
            request=self.request,
        )
        run_close(self.request, self.run)
        return redirect("sharing:share_done", share_id=share.pk)


def not_mailed_members(entries):
    """Return [(recipient name, [member names])] for the groups and departments
    among `entries` whose members without an e-mail address get no mail."""
    pks = {"group": [], "department": []}
    for entry in entries:
        if entry.kind in pks:
            pks[entry.kind].append(entry.pk)
    if not pks["group"] and not pks["department"]:
        return []
    names = members_without_email(
        group_pks=pks["group"], department_pks=pks["department"]
    )
    return [(entry.name, names[entry.key]) for entry in entries if entry.key in names]


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


def _start(request, *, study_ids, parent_bucket=None, step=STEP_STUDIES):
    run = run_open(request)
    storage = get_storage(ShareWizard.storage_name, _storage_prefix(run), request)
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
    storage.mark_if_changed()
    return redirect(run_step_url(run, step))


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
