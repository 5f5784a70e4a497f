"""Browser tests: Playwright driving Debian's Chromium against the live test server.

Without Chromium these tests skip with a reason and the run's summary says that the
browser tests did not run; with REQUIRE_SERVICES=1 a missing Chromium fails them.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.helpers import ARTIFACTS, mark_tests, signed_in
from tests.tiers import skip_or_fail

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
SCREENSHOTS = ARTIFACTS / "screenshots"
WIDTHS = (1280, 390)
_not_run: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here drives Chromium: `browser`, which `make test-fast` leaves out.
    First, so that `-m` sees the marker."""
    mark_tests(items, pytest.mark.browser, folder=Path(__file__).parent)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        _not_run.append(reason)
        skip_or_fail(f"Browser tests did not run: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package", autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in the test's thread, and Django refuses
    ORM calls from a thread with a running loop unless told that this is intended. Only
    for this package: the setting must not reach the other tests."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page_for(browser, live_server):
    """page_for(user) -> a Playwright page signed in as `user` (None: signed out)."""
    contexts = []

    def open_page(user=None):
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": WIDTHS[0], "height": 900}
        )
        if user is not None:
            session = signed_in(user).cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": session,
                        "url": live_server.url,
                    }
                ]
            )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    """Save the page at every width under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(original)


def pytest_terminal_summary(terminalreporter) -> None:
    if _not_run:
        terminalreporter.write_line(
            f"Browser tests did not run: {_not_run[0]}", yellow=True, bold=True
        )
