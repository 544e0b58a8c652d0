"""The nl, fr and de catalogues are complete, compiled, and what users really see.

Needs no gettext tools: the .po files are read by a small parser, the source is
scanned with Django's own template-to-gettext converter, and the compiled .mo
files are read back with Python's gettext module.
"""

import ast
import datetime
import gettext
import html
import io
import re
import tokenize
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation.template import templatize

from recipients.models import Membership
from sharing.outbox import delivery, queue
from tests.factories import BucketFactory, UserFactory, build_wizard_world, make_bucket
from tests.sharing.wizard_support import (
    key,
    parameters_data,
    post_step,
    recipients_data,
    start,
    step_url,
    studies_data,
)

BASE = Path(settings.BASE_DIR)
LOCALES = ["nl", "fr", "de"]
# What `make messages` scans (the rest of the tree is ignored there too).
SOURCE_DIRS = ["pacsshare", "recipients", "studies", "sharing", "templates"]
# English a user must never meet in a translated page, whatever the catalogue says.
KNOWN_ENGLISH = [
    "Share studies",
    "Log out",
    "Log in",
    "Reason for sharing",
    "Patient agreed",
    "Valid till",
    "Two-factor authentication",
    "Send mail",
    "Enter the code from the SMS",
    "Shared with me",
    "Status Forwarding",
    "shared an exam with you",
    "Open the exam",
]


# -- reading catalogues ---------------------------------------------------------


def _unquote(text):
    return ast.literal_eval(text)


def parse_po(path):
    """Return the entries of a .po file as dicts (header and obsolete ones left out).

    Each entry: msgctxt, msgid, msgid_plural, msgstr (str) or msgstr_plural
    ({index: str}), flags (set) and line (where it starts).
    """
    entries = []
    entry = None
    field = None

    def finish():
        if entry is not None and entry.get("msgid") is not None:
            entries.append(entry)

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#"):
            if entry is not None and field is not None:
                finish()
                entry, field = None, None
            if entry is None:
                entry = {"flags": set(), "line": number, "msgstr_plural": {}}
            if line.startswith("#,"):
                entry["flags"].update(f.strip() for f in line[2:].split(","))
            continue
        if entry is not None and field is not None and line.startswith("msg"):
            starts_new = line.startswith(("msgctxt", "msgid ")) and field.startswith(
                "msgstr"
            )
            if starts_new:
                finish()
                entry = None
        if entry is None:
            entry = {"flags": set(), "line": number, "msgstr_plural": {}}
        match = re.match(
            r"(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(.*)", line
        )
        if match:
            name, index, rest = match.groups()
            value = _unquote(rest)
            if index is not None:
                field = ("msgstr_plural", int(index))
                entry["msgstr_plural"][int(index)] = value
            else:
                field = name
                entry[name] = value
            continue
        # A continuation line: "more text".
        value = _unquote(line)
        if isinstance(field, tuple):
            entry["msgstr_plural"][field[1]] += value
        else:
            entry[field] += value
    finish()
    return [e for e in entries if e["msgid"] != ""]


def po_path(language):
    return BASE / "locale" / language / "LC_MESSAGES" / "django.po"


def mo_path(language):
    return BASE / "locale" / language / "LC_MESSAGES" / "django.mo"


def entry_key(entry):
    return (entry.get("msgctxt"), entry["msgid"])


def translations_of(entry):
    if entry.get("msgid_plural") is not None:
        return [
            entry["msgstr_plural"].get(i, "") for i in sorted(entry["msgstr_plural"])
        ]
    return [entry.get("msgstr", "")]


# -- reading the source, as makemessages would ------------------------------------

SINGULAR = {"gettext", "gettext_lazy", "gettext_noop", "_", "ugettext"}
PLURAL = {"ngettext", "ngettext_lazy", "ungettext"}
CONTEXT = {"pgettext", "pgettext_lazy"}
CONTEXT_PLURAL = {"npgettext", "npgettext_lazy"}
KEYWORDS = SINGULAR | PLURAL | CONTEXT | CONTEXT_PLURAL


def _calls(code):
    """Yield (keyword, [literal arguments]) for each gettext-like call in `code`."""
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(code).readline)
        if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    ]
    for i, token in enumerate(tokens[:-1]):
        if token.type != tokenize.NAME or token.string not in KEYWORDS:
            continue
        if tokens[i + 1].string != "(":
            continue
        args, current, j = [], None, i + 2
        while j < len(tokens):
            t = tokens[j]
            if t.type == tokenize.STRING:
                current = (current or "") + ast.literal_eval(t.string)
            elif t.string == "," and current is not None:
                args.append(current)
                current = None
            else:
                break
            j += 1
        if current is not None:
            args.append(current)
        yield token.string, args


def source_messages():
    """Return {(context, msgid): "file"} for every literal marked for translation."""
    found = {}
    for directory in SOURCE_DIRS:
        for path in sorted((BASE / directory).rglob("*")):
            if path.suffix not in (".py", ".html", ".txt") or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8")
            if path.suffix != ".py":
                # Django's own conversion, as makemessages does; dedented so that
                # Python's tokenizer does not trip over the template's indentation.
                text = templatize(text, origin=str(path))
                text = "\n".join(line.lstrip() for line in text.splitlines())
            calls = list(_calls(text))
            for name, args in calls:
                if name in CONTEXT | CONTEXT_PLURAL and len(args) >= 2:
                    found.setdefault((args[0], args[1]), str(path.relative_to(BASE)))
                elif name in SINGULAR | PLURAL and args:
                    found.setdefault((None, args[0]), str(path.relative_to(BASE)))
    return found


PLACEHOLDER = re.compile(r"%\([A-Za-z_]+\)[sd]|%%|%[sd]|\{[A-Za-z_]*\}|</?[a-z][^>]*>")


def placeholders(text):
    return sorted(PLACEHOLDER.findall(text))


# -- the catalogues ----------------------------------------------------------------


@pytest.mark.parametrize("language", LOCALES)
def test_it_has_no_untranslated_or_fuzzy_message(language):
    problems = []
    for entry in parse_po(po_path(language)):
        if "fuzzy" in entry["flags"]:
            problems.append(f"line {entry['line']}: fuzzy: {entry['msgid']!r}")
        elif not all(translations_of(entry)):
            problems.append(f"line {entry['line']}: untranslated: {entry['msgid']!r}")

    assert not problems, f"{language}:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", LOCALES)
def test_it_keeps_every_placeholder_and_tag_of_the_english(language):
    problems = []
    for entry in parse_po(po_path(language)):
        if entry.get("msgid_plural") is None:
            pairs = [(entry["msgid"], entry.get("msgstr", ""))]
        else:
            forms = translations_of(entry)
            # The singular form may drop the number ("One more wrong code...").
            allowed = set(placeholders(entry["msgid_plural"]))
            allowed |= set(placeholders(entry["msgid"]))
            if not set(placeholders(forms[0])) <= allowed:
                problems.append(f"{entry['msgid']!r} -> {forms[0]!r}")
            pairs = [(entry["msgid_plural"], form) for form in forms[1:]]
        for english, translated in pairs:
            if translated and placeholders(english) != placeholders(translated):
                problems.append(f"{english!r} -> {translated!r}")

    assert not problems, f"{language}:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", LOCALES)
def test_every_string_marked_in_the_source_is_in_the_catalogue(language):
    catalogue = {entry_key(e) for e in parse_po(po_path(language))}

    missing = [
        f"{where}: {msgid!r}"
        for (context, msgid), where in sorted(source_messages().items())
        if (context, msgid) not in catalogue
    ]

    assert not missing, f"{language}: run `make messages` and translate:\n" + "\n".join(
        missing
    )


def test_the_source_scan_finds_strings_of_code_and_templates():
    found = source_messages()

    assert (None, "Reason for sharing") in found  # sharing/forms.py
    assert (None, "Log out") in found  # templates/base.html
    assert (None, "Send a new code (in %%s s)") in found  # {% translate %} with %
    assert (None, "%(sender)s shared an exam with you") in found


@pytest.mark.parametrize("language", LOCALES)
def test_the_compiled_catalogue_matches_the_po_file(language):
    with mo_path(language).open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog
    expected = {}
    for entry in parse_po(po_path(language)):
        if "fuzzy" in entry["flags"]:
            continue
        msgid = entry["msgid"]
        if entry.get("msgctxt") is not None:
            msgid = f"{entry['msgctxt']}\x04{msgid}"
        if entry.get("msgid_plural") is None:
            expected[msgid] = entry.get("msgstr", "")
        else:
            for index, form in entry["msgstr_plural"].items():
                expected[(msgid, index)] = form
    compiled = {k: v for k, v in compiled.items() if k != ""}

    stale = sorted(
        str(k)
        for k in expected.keys() | compiled.keys()
        if expected.get(k) != compiled.get(k)
    )

    assert not stale, (
        f"{language}: django.mo is out of date; run `make messages`:\n"
        + "\n".join(stale[:20])
    )


def test_every_language_but_english_has_the_same_messages():
    keys = {lang: {entry_key(e) for e in parse_po(po_path(lang))} for lang in LOCALES}
    offered = {code for code, _name in settings.LANGUAGES} - {"en"}

    assert offered == set(LOCALES)
    assert keys["nl"] == keys["fr"] == keys["de"]


# -- what users see ----------------------------------------------------------------


def english_phrases(language):
    """Return English UI phrases that must not survive translation into `language`.

    Every catalogue message of two words or more whose translation differs, with no
    placeholder or markup, plus the phrases users meet most.
    """
    phrases = set(KNOWN_ENGLISH)
    for entry in parse_po(po_path(language)):
        if entry.get("msgid_plural") is not None or entry.get("msgctxt"):
            continue
        msgid = entry["msgid"]
        if placeholders(msgid) or " " not in msgid.strip():
            continue
        if entry.get("msgstr") and entry["msgstr"] != msgid:
            phrases.add(msgid)
    return phrases


def visible_text(content):
    """Return what a user can read or hear: text and labelling attributes."""
    text = content.decode() if isinstance(content, bytes) else content
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    attributes = re.findall(
        r'\s(?:aria-label|title|placeholder|alt|data-[\w-]+)="([^"]*)"', text
    )
    text = re.sub(r"<[^>]*>", "\n", text)
    return html.unescape("\n".join([text, *attributes]))


def assert_translated(language, pieces):
    phrases = english_phrases(language)
    leftovers = {}
    for name, content in pieces.items():
        text = visible_text(content)
        found = sorted(p for p in phrases if p in text)
        if found:
            leftovers[name] = found
    assert not leftovers, f"English left in {language}: {leftovers}"


def in_language(client, language):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def get_ok(client, url):
    response = client.get(url, follow=True)
    assert response.status_code == 200, (url, response.status_code)
    return response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, welcome",
    [("nl", "Inloggen"), ("fr", "Se connecter"), ("de", "Anmelden")],
)
def test_the_login_page_speaks_the_browser_language(client, language, welcome):
    in_language(client, language)
    UserFactory(username="someone")

    page = get_ok(client, reverse("login"))
    refused = client.post(
        reverse("login"), {"username": "someone", "password": "wrong"}
    ).content

    assert welcome in visible_text(page)
    assert f'lang="{language}"' in page.decode()
    assert_translated(language, {"login": page, "login refused": refused})


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, share_button",
    [
        ("nl", "Onderzoeken delen"),
        ("fr", "Partager des examens"),
        ("de", "Untersuchungen teilen"),
    ],
)
def test_a_sender_meets_no_english_from_overview_to_confirmation(
    client, language, share_button
):
    world = build_wizard_world()
    admin = UserFactory(username="dept-admin")
    Membership.objects.create(user=admin, department=world.department, is_admin=True)
    in_language(client, language)
    client.force_login(world.sender)
    pages = {"overview": get_ok(client, reverse("studies:overview"))}
    pages["study"] = get_ok(
        client, reverse("studies:study", kwargs={"study_id": world.studies[0].pk})
    )

    start(client, world.studies)
    pages["wizard studies"] = get_ok(client, step_url("studies"))
    post_step(client, "studies", studies_data(world.studies))
    pages["wizard recipients"] = get_ok(client, step_url("recipients"))
    pages["wizard recipients refused"] = post_step(
        client, "recipients", recipients_data([])
    ).content
    post_step(client, "recipients", recipients_data([(key(world.fr), True, True)]))
    pages["wizard parameters"] = get_ok(client, step_url("parameters"))
    pages["wizard without patient agreed"] = post_step(
        client, "parameters", parameters_data(patient_agreed=None, reason="")
    ).content
    done = post_step(client, "parameters", parameters_data(language=language))
    pages["confirmation"] = get_ok(client, done.url)
    client.force_login(admin)
    pages["status forwarding"] = get_ok(client, reverse("sharing:status_forwarding"))

    assert share_button in visible_text(pages["overview"])
    assert_translated(language, pages)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, prompt",
    [
        ("nl", "Voer de code uit de sms in"),
        ("fr", "Saisissez le code reçu par SMS"),
        ("de", "Geben Sie den Code aus der SMS ein"),
    ],
)
def test_a_recipient_meets_no_english_from_code_to_study(client, language, prompt):
    recipient = UserFactory(mobile="+32475123456", language=language)
    protected = make_bucket(recipient=recipient, require_otp=True)
    open_bucket = make_bucket(
        recipient=recipient,
        require_otp=False,
        department=protected.share.source_department,
        access="write",
        urgent=True,
    )
    locked = make_bucket(
        recipient=recipient,
        department=protected.share.source_department,
        bucket_kwargs={"locked_at": timezone.now()},
    )
    in_language(client, language)
    client.force_login(recipient)

    def study_of(bucket):
        return reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": bucket.share.studies.get().pk},
        )

    pages = {
        "code": get_ok(
            client, reverse("sharing:bucket_code", kwargs={"bucket_id": protected.pk})
        ),
        "wrong code": client.post(
            reverse("sharing:bucket_code", kwargs={"bucket_id": protected.pk}),
            {"code": "000000"},
        ).content,
        "shared with me": get_ok(client, reverse("sharing:shared_with_me")),
        "received study": get_ok(client, study_of(open_bucket)),
        "locked": client.get(study_of(locked)).content,
    }

    assert prompt in visible_text(pages["code"])
    assert_translated(language, pages)


@pytest.mark.django_db
@pytest.mark.parametrize("language", LOCALES)
def test_the_mails_and_the_sms_meet_no_english(language):
    admin = UserFactory(language=language)
    bucket = make_bucket(
        language=language,
        urgent=True,
        valid_until=timezone.localdate() + datetime.timedelta(days=7),
    )
    Membership.objects.create(
        user=admin, department=bucket.share.source_department, is_admin=True
    )
    group_bucket = BucketFactory(
        share=bucket.share,
        recipient_user=None,
        recipient_department=bucket.share.source_department,
    )
    with transaction.atomic():
        share_mails = queue.notifications_queue_for_bucket(bucket=bucket)
        share_mails += queue.notifications_queue_for_bucket(bucket=group_bucket)
        locked_mails = queue.notification_queue_bucket_locked(bucket=bucket)

    pieces = {}
    for n, notification in enumerate(share_mails):
        subject, text, body = delivery.render_share_mail(notification)
        pieces.update({f"share subject {n}": subject, f"share text {n}": text})
        pieces[f"share html {n}"] = body
    # Each admin gets the alert in their own language; the helper's admin reads en.
    locked_mails = [n for n in locked_mails if n.language == language]
    for n, notification in enumerate(locked_mails):
        subject, text, body = delivery.render_bucket_locked_mail(notification)
        pieces.update({f"locked subject {n}": subject, f"locked text {n}": text})
        pieces[f"locked html {n}"] = body
    pieces["sms"] = delivery.render_otp_sms(code="123456", language=language)

    assert len(share_mails) >= 2 and locked_mails
    assert_translated(language, pieces)
