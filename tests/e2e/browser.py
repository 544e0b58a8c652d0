"""What the browser stories do with a page: log in, watch the console, wait for
an image. Their data comes from ``build_story_world()`` in tests/factories.py."""

from django.urls import reverse

from tests.factories import PASSWORD


def log_in(page, base_url, username, *, next_url=None):
    """Log in through the login form (optionally from a page that asked for it)."""
    if next_url is None:
        page.goto(base_url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]:has-text('Log in')")
    page.wait_for_load_state()


def log_out(page):
    page.click("form.logout-form button")
    page.wait_for_load_state()


def watch_console(page):
    """Collect script errors, CSP reports and failed images/scripts/styles.

    A refusal page answers 403 or 404 on purpose, so failed documents do not
    count; a failed sub-resource (a frame, a stylesheet) does.
    """
    problems = []

    def on_console(msg):
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(msg.text)

    def on_response(response):
        if response.status >= 400 and response.request.resource_type != "document":
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def image_loaded(page, selector="img.viewer-image"):
    """Return whether the <img> finished loading a real picture."""
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel);"
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
        timeout=15000,
    )
    return page.eval_on_selector(selector, "img => img.naturalWidth") > 0
