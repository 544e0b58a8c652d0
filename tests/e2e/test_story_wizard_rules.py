"""Stories: the wizard's rules in Chromium (issue 14, items 1, 2, 4 and 8).

Two tabs of one login each share what they showed; Previous and the browser's
Back keep what was typed; the language counts groups and departments and says
why; anonymize says what it does and the pop-up says it as the recipient sees it.
"""

import pytest
from playwright.sync_api import expect

from recipients.models import Membership
from sharing.models import Share
from tests.e2e.browser import log_in, watch_console
from tests.e2e.conftest import screenshot
from tests.factories import DepartmentFactory, UserFactory, UserGroupFactory
from tests.factories import build_story_world as build_world

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

IMAGES_ONLY = "Images only (anonymized: the report is not available)"


def start_share(page, base_url, study):
    page.goto(base_url + "/overview/")
    page.check(f"#select-study-{study.pk}")
    page.click("#share-button")
    page.wait_for_url("**/share/wizard/*/studies/")
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/wizard/*/recipients/")


def pick(page, index, query, name):
    row = page.locator("[data-row]").nth(index)
    row.locator(".recipient-query").fill(query)
    row.locator(".recipient-results [data-key]", has_text=name).click()


def next_step(page, step):
    page.click(".wizard-actions .button-primary")
    page.wait_for_url(f"**/share/wizard/*/{step}/")


def typed_values(page):
    return {
        "reason": page.input_value("[name='parameters-reason']"),
        "message": page.input_value("[name='parameters-message']"),
        "language": page.input_value("[name='parameters-language']"),
        "urgent": page.is_checked("[name='parameters-urgent']"),
        "anonymize": page.is_checked("[name='parameters-anonymize']"),
        "agreed": page.is_checked("[name='parameters-patient_agreed']"),
    }


def test_two_tabs_keep_their_own_share_and_what_was_typed(site, context, page):
    world = build_world()
    problems = watch_console(page)
    log_in(page, site.url, "dr-sender")

    # Tab A: Peeters's CT for Dr. Maes, up to the parameters.
    start_share(page, site.url, world.ct)
    pick(page, 0, "maes", "Lucas Maes")
    next_step(page, "parameters")
    page.fill("[name='parameters-reason']", "Tab A: second opinion")
    page.fill("[name='parameters-message']", "Tab A's message")
    page.check("[name='parameters-urgent']")
    page.check("[name='parameters-anonymize']")
    page.check("[name='parameters-patient_agreed']")
    page.select_option("[name='parameters-language']", "de")
    expect(page.locator("#language-reason")).to_have_text("Chosen by you.")
    help_text = page.locator(".field-anonymize .field-help").inner_text()
    assert "The first name is replaced by a number" in help_text
    assert "“Anonymous”" in help_text and "never accessible" in help_text
    page.locator(".field-anonymize").scroll_into_view_if_needed()
    screenshot(page, "w01-parameters-anonymize-help")
    typed = typed_values(page)

    # "Previous", then "Next": everything typed is there again.
    page.click("button[name='wizard_goto_step']")
    page.wait_for_url("**/share/wizard/*/recipients/")
    next_step(page, "parameters")
    assert typed_values(page) == typed
    expect(page.locator("#language-reason")).to_have_text("Chosen by you.")

    # The browser's Back, then "Next": the same.
    page.fill("[name='parameters-message']", "Tab A's message, longer")
    typed = typed_values(page)
    page.go_back()
    page.wait_for_url("**/share/wizard/*/recipients/")
    next_step(page, "parameters")
    assert typed_values(page) == typed

    # Tab B of the same login: Janssens's MR for Dr. Willems.
    tab_b = context.new_page()
    problems_b = watch_console(tab_b)
    start_share(tab_b, site.url, world.mr)
    pick(tab_b, 0, "willems", "Emma Willems")
    next_step(tab_b, "parameters")
    assert "Dr. Emma Willems" in tab_b.inner_text("main")

    # Tab A shares what tab A showed: never tab B's study or recipient.
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/*/")
    dialog = page.locator("#share-info-dialog")
    dialog.wait_for(state="visible")
    shown = dialog.inner_text()
    assert "Dr. Lucas Maes" in shown and "Emma Willems" not in shown
    assert IMAGES_ONLY in shown
    assert "read access to the report" not in shown
    assert "Deutsch" in shown
    assert page.input_value("#share-info-text").count(IMAGES_ONLY) == 1
    screenshot(page, "w02-pop-up-anonymized")
    share_a = Share.objects.get()
    assert list(share_a.studies.all()) == [world.ct]
    assert share_a.buckets.get().recipient_user == world.recipient
    assert (share_a.reason, share_a.language) == ("Tab A: second opinion", "de")
    assert share_a.message == "Tab A's message, longer"
    assert share_a.anonymize and share_a.urgent

    # Back in tab A after the share: no second share, the confirmation again.
    page.go_back()
    page.wait_for_load_state()
    assert Share.objects.count() == 1

    # Tab B still shares its own.
    tab_b.fill("[name='parameters-reason']", "Tab B: follow-up")
    tab_b.check("[name='parameters-patient_agreed']")
    tab_b.click(".wizard-actions .button-primary")
    tab_b.wait_for_url("**/share/*/")
    share_b = Share.objects.exclude(pk=share_a.pk).get()
    assert list(share_b.studies.all()) == [world.mr]
    assert share_b.buckets.get().recipient_user == world.favorite
    assert share_b.reason == "Tab B: follow-up"
    assert problems == [] and problems_b == []


def test_the_language_counts_groups_and_departments_and_says_why(site, page):
    world = build_world()
    problems = watch_console(page)
    gps = UserGroupFactory(name="Huisartsen Gent")
    gps.members.add(
        *(
            UserFactory(username=f"gp-gent-{n}", language="nl", last_name=f"GP{n}")
            for n in range(3)
        )
    )
    liege = DepartmentFactory(code="chu-liege", name="CHU Liège", language="fr")
    Membership.objects.create(
        user=UserFactory(username="liege-rad", language="fr"), department=liege
    )
    UserFactory(
        username="dr-schmidt",
        title="Dr.",
        first_name="Klaus",
        last_name="Schmidt",
        language="de",
    )
    log_in(page, site.url, "dr-sender")

    start_share(page, site.url, world.ct)
    pick(page, 0, "huisartsen", "Huisartsen Gent")
    page.click("#recipient-add")
    pick(page, 1, "liege", "CHU Liège")
    page.click("#recipient-add")
    pick(page, 2, "schmidt", "Klaus Schmidt")
    next_step(page, "parameters")

    assert page.input_value("[name='parameters-language']") == "nl"
    expect(page.locator("#language-reason")).to_have_text(
        "Language of the first recipient."
    )
    page.locator(".field-language").scroll_into_view_if_needed()
    screenshot(page, "w03-parameters-language-reason")

    page.fill("[name='parameters-reason']", "Shared care")
    page.check("[name='parameters-patient_agreed']")
    page.click(".wizard-actions .button-primary")
    page.wait_for_url("**/share/*/")
    assert Share.objects.get().language == "nl"
    assert problems == []
