"""End users in a real browser: sign in, submit, watch, play, find, act, and never see
another user's work. Every page is photographed at 1280 and 390 px."""

import re

import pytest

from generations import services
from generations.tests.factories import UserFactory
from generations.tests.pipeline_helpers import make_images, run_pipeline
from tests.browser.conftest import screenshot
from tests.workers import wait_until_ended

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"  # the factories' password
LONG = 120_000


def _progress_is_full(page) -> None:
    page.wait_for_function(
        """() => {
            const bar = document.querySelector('#live-region [role=progressbar]');
            return bar && bar.getAttribute('aria-valuenow') === bar.getAttribute('aria-valuemax');
        }""",
        timeout=LONG,
    )


def _status_text(page):
    return page.locator("#live-region .badge").first.inner_text().strip()


def _badge_shows(page, status: str, *, timeout: float = LONG) -> None:
    page.wait_for_function(
        "status => document.querySelector('#live-region .badge')?.textContent.includes(status)",
        arg=status,
        timeout=timeout,
    )


def test_sign_in_submit_watch_and_play(page_for, start_worker):
    start_worker()
    user = UserFactory(username="maria")
    page = page_for()

    page.goto("/accounts/login/")
    screenshot(page, "login")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/history$"))
    screenshot(page, "history-empty")

    page.goto("/generate")
    screenshot(page, "generate-video_ad")
    page.get_by_label("Title").fill("Sunrise bottle")
    page.get_by_label("Prompt").fill("A reusable water bottle on a mountain trail at sunrise")
    for label in ("Medium", "Aggressive"):
        page.get_by_label(label, exact=True).uncheck()
    page.get_by_label("Scenes per variant").fill("2")
    page.get_by_label("Seconds per scene").fill("1")
    page.get_by_role("button", name="Start generation").click()
    page.wait_for_url(re.compile(r"/generations/[0-9a-f-]{36}$"))

    page.evaluate("window.__sameDocument = true")
    _progress_is_full(page)
    _badge_shows(page, "Completed")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert page.locator("video").count() == 4

    video = page.locator("video").first
    video.evaluate("v => { v.muted = true; return v.play().catch(() => null); }")
    page.wait_for_function("() => document.querySelector('video').readyState >= 2", timeout=30_000)
    screenshot(page, "detail-video_ad")
    assert user.generations.get().status == "completed"


def test_search_and_filter_history(page_for, owner):
    make_images(owner, prompt="A lighthouse at dusk")
    make_images(owner, prompt="A red kite over the dunes", fail_items=["b:1"])
    make_images(owner, prompt="Pancakes with berries", run=False)
    page = page_for(owner)

    page.goto("/history")
    assert page.locator(".gen-card").count() == 3
    screenshot(page, "history")

    page.get_by_label("Search").fill("lighthouse")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"q=lighthouse"))
    cards = page.locator(".gen-card")
    assert cards.count() == 1
    assert "lighthouse" in cards.first.inner_text().lower()
    screenshot(page, "history-search")

    page.goto("/history?status=partial_success")
    assert page.locator(".gen-card").count() == 1
    assert "kite" in page.locator(".gen-card").first.inner_text().lower()

    page.goto("/library")
    assert page.locator(".tile, .gen-card, .library-card").count() >= 2
    screenshot(page, "library")


def test_regenerate_starts_a_copy_with_lineage(page_for, owner):
    original = make_images(owner, prompt="A lighthouse at dusk")
    page = page_for(owner)

    page.goto(f"/generations/{original.id}")
    page.locator("#action-regenerate").click()
    page.wait_for_url(re.compile(r"/generations/[0-9a-f-]{36}$"))

    assert str(original.id) not in page.url
    assert page.locator(f"a[href='/generations/{original.id}']").count() >= 1
    copy = original.regenerations.get()
    assert copy.input["seed"] == original.input["seed"]


def test_retry_after_an_injected_failure(page_for, owner, start_worker):
    start_worker()
    generation = make_images(owner, run=False, prompt="A red kite", fail_items=["b:1"])
    wait_until_ended(generation)
    assert generation.status == "partial_success"
    page = page_for(owner)

    page.goto(f"/generations/{generation.id}")
    assert "Partial" in _status_text(page)
    screenshot(page, "detail-partial")
    page.locator("#action-retry").click()
    _badge_shows(page, "Completed")

    generation.refresh_from_db()
    assert (generation.status, generation.failed_items) == ("completed", 0)


def test_cancel_a_running_generation(page_for, owner, start_worker):
    start_worker()
    generation = services.generation_create(
        owner=owner,
        kind="video_ad",
        input={
            "prompt": "Slow items",
            "delay_ms": 5000,
            "scene_seconds": 1,
            "width": 160,
            "height": 90,
            "fps": 12,
        },
    )
    page = page_for(owner)
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"/generations/{generation.id}")
    page.locator("#action-cancel").click()
    page.wait_for_load_state()

    # Cancelling while its running items stop at their next checkpoint, then cancelled:
    # the page keeps polling until the cancel has settled.
    generation.refresh_from_db()
    assert generation.status in {"cancelling", "cancelled"}
    _badge_shows(page, "Cancelled", timeout=30_000)
    generation.refresh_from_db()
    assert generation.status == "cancelled"
    assert generation.pending_items == 0
    screenshot(page, "detail-cancelled")


def test_delete_asks_then_restore_brings_it_back(page_for, owner):
    generation = make_images(owner, prompt="A lighthouse at dusk")
    page = page_for(owner)

    page.goto(f"/generations/{generation.id}")
    page.locator("#action-delete").click()
    page.wait_for_url(re.compile(r"/delete$"))
    screenshot(page, "confirm-delete")
    page.get_by_role("button", name="Move to trash").click()
    page.wait_for_url(re.compile(r"/history"))
    assert page.locator(".gen-card").count() == 0

    page.goto("/history/trash")
    screenshot(page, "trash")
    page.get_by_role("button", name=re.compile("Restore")).first.click()
    page.wait_for_load_state()

    generation.refresh_from_db()
    assert generation.deleted_at is None
    page.goto("/history")
    assert page.locator(".gen-card").count() == 1


def test_another_user_gets_404_on_pages_and_assets(page_for, owner, other_user):
    generation = make_images(owner, prompt="Private work")
    item = generation.items.first()
    page = page_for(other_user)

    for path in (
        f"/generations/{generation.id}",
        f"/generations/{generation.id}/live",
        f"/generations/{generation.id}/delete",
        f"/history/cards/{generation.id}",
        f"/compare?a={generation.id}&b={generation.id}",
        f"/api/generations/{generation.id}/download/",
        f"/api/items/{item.id}/download/",
    ):
        response = page.goto(path)
        assert response.status == 404, path
    assert "Private work" not in page.content()
    page.goto(f"/generations/{generation.id}")
    screenshot(page, "not-found")


def test_every_remaining_page_looks_finished(page_for, owner):
    first = make_images(owner, prompt="A lighthouse at dusk")
    second = services.generation_regenerate(
        generation=first, owner=owner, overrides={"prompt": "A lighthouse at dawn"}
    )
    speech = services.generation_create(
        owner=owner,
        kind="speech",
        input={"text": "Welcome to the spring sale. Everything is on offer."},
    )
    run_pipeline(second)
    run_pipeline(speech)
    page = page_for(owner)

    for path, name in (
        (f"/generations/{first.id}", "detail-image"),
        (f"/generations/{speech.id}", "detail-speech"),
        (f"/compare?a={first.id}&b={second.id}", "compare"),
        ("/compare", "compare-pick"),
        ("/stats", "stats"),
        ("/account", "account"),
        ("/generate?kind=speech", "generate-speech"),
        ("/generate?kind=image", "generate-image"),
        ("/accounts/password/", "password-change"),
    ):
        response = page.goto(path)
        assert response.status == 200, path
        screenshot(page, name)
