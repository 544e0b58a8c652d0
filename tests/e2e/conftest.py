"""Browser tests: Playwright driving Debian's Chromium against a live server."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.fixtures_services import (  # noqa: F401 - fixtures used by the stories
    celery_worker,
    sms_outbox,
    smtp_server,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def base_url(pytestconfig):
    """The --base-url option, as pytest-playwright's own fallback gives it.

    That fallback (used without pytest-base-url) is a session fixture defined as
    a method, which pytest 9 deprecates with a warning on every run.
    """
    return pytestconfig.getoption("--base-url") or pytestconfig.getini("base_url")


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture(autouse=True)
def _needs_chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")


def screenshot(page, name):
    """Save the page at desktop and phone width under screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(size)


# -- the stories' services ---------------------------------------------------------


@pytest.fixture
def site(live_server, settings, smtp_server, celery_worker, sms_outbox):  # noqa: F811
    """The live server with real mail (aiosmtpd), a real Celery worker on Redis
    and SMS in memory; mail links point at the live server."""
    settings.SITE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    return SimpleNamespace(url=live_server.url, smtp=smtp_server, sms=sms_outbox)


@pytest.fixture
def clipboard_context(context, live_server):
    """The page's context, allowed to write and read the clipboard."""
    context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=live_server.url
    )
    return context
