"""The generation page, its live region and the comparison page, with generations driven
through the real pipeline in-process (the `sent` fixture keeps messages off the broker)."""

import re
import urllib.request
import uuid
from html import unescape as html_unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations import services
from generations.models import Attempt, Item
from generations.pipeline.lifecycle import item_claim
from generations.pipeline.prepare import generation_prepare
from generations.pipeline.render import item_render
from generations.states import AttemptOutcome
from history.tests.conftest import make_images, run_in_process

pytestmark = pytest.mark.django_db

VIDEO = {
    "prompt": "A kettle on a stove",
    "scene_seconds": 1,
    "width": 160,
    "height": 90,
    "fps": 12,
}
TRIGGER = 'hx-trigger="every 2s"'


def make_video(owner, *, items=1, variants=("soft",), run=True, **overrides):
    generation = services.generation_create(
        owner=owner,
        kind="video_ad",
        input={**VIDEO, "scenes_per_variant": items, "variants": list(variants), **overrides},
    )
    return run_in_process(generation) if run else generation


def make_speech(owner):
    generation = services.generation_create(
        owner=owner,
        kind="speech",
        title="Welcome",
        input={"text": "Welcome to the show. Thanks for listening.", "variants": ["narrator"]},
    )
    return run_in_process(generation)


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def client(owner):
    return signed_in(owner)


def page(client, generation):
    response = client.get(f"/generations/{generation.id}")
    assert response.status_code == 200
    return response.content.decode()


def live(client, generation, **headers):
    response = client.get(f"/generations/{generation.id}/live", headers=headers)
    assert response.status_code == 200
    return response.content.decode()


# Players and facts --------------------------------------------------------------------


def test_video_ad_page_has_a_player_per_item_with_poster_facts_and_downloads(client, owner):
    generation = make_video(owner, variants=("soft", "ultra"))
    assert generation.status == "completed"

    html = page(client, generation)

    items = list(generation.items.order_by("variant__position"))
    assert html.count("<video ") == 2
    video = re.search(r"<video [^>]*>", html).group(0)
    assert 'controls preload="metadata"' in video
    assert re.search(r' poster="[^"]+"', video)
    assert re.search(r' src="[^"]+"', video)
    for item in items:
        assert f"/api/items/{item.id}/download/" in html
    assert f"/api/generations/{generation.id}/download/" in html
    assert 'href="#variant-soft"' in html
    assert 'id="variant-ultra"' in html
    assert "160\u00d790" in html
    assert "Completed" in html


def test_player_urls_serve_the_stored_files(client, owner):
    generation = make_video(owner)
    item = generation.items.get()
    html = page(client, generation)

    video = re.search(r"<video [^>]*>", html).group(0)
    served = {
        attribute: fetch(client, re.search(rf' {attribute}="([^"]+)"', video).group(1))
        for attribute in ("src", "poster")
    }
    assert len(served["src"]) == item.file_size
    assert served["poster"][:2] == b"\xff\xd8"  # a JPEG thumbnail


def fetch(client, url):
    """The body behind a media URL: our signed local link, or a presigned S3 URL."""
    url = html_unescape(url)
    if url.startswith("/"):
        response = client.get(url)
        assert response.status_code == 200
        return b"".join(response.streaming_content) if response.streaming else response.content
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 -- test bucket
        return response.read()


def test_speech_page_has_audio_players_and_waveforms(client, owner):
    generation = make_speech(owner)
    assert generation.status == "completed"

    html = page(client, generation)

    assert html.count("<audio ") == generation.total_items
    assert 'alt="Waveform of track 1"' in html
    assert "<video" not in html
    assert "Track 1" in html


def test_image_page_shows_each_image_with_alt_text(client, owner):
    generation = make_images(owner)

    html = page(client, generation)

    images = re.findall(r'<a class="item-card__image" href="[^"]+"><img ([^>]*)>', html)
    assert len(images) == 2
    assert all('alt="A red kite over the dunes' in image for image in images)
    assert 'width="64" height="64"' in images[0]
    assert "<video" not in html
    assert "<audio" not in html


def test_stage_metadata_is_collapsible_with_summaries_json_and_prompt_lists(client, owner):
    generation = make_video(owner, items=2, variants=("soft", "medium"))

    html = page(client, generation)

    for name in ("parameters", "analysis", "transformation", "prompts", "evaluation"):
        assert f'<details class="card stage" id="stage-{name}">' in html
    assert "soft: gentle, relaxed pacing" in html
    assert "4 prompts across 2 variants" in html
    assert "100% of items succeeded" in html
    prompt_lists = re.findall(r'<ol class="stage__prompts">(.*?)</ol>', html, re.S)
    assert len(prompt_lists) == 2
    assert prompt_lists[0].count("<li>") == 2
    assert "Hook: A kettle on a stove." in prompt_lists[0]
    assert "&quot;durations_on_target&quot;: true" in html


def test_failed_items_show_their_error_and_a_retry_action(client, owner):
    generation = make_images(owner, fail_items=["a:1"])
    assert generation.status == "partial_success"

    html = page(client, generation)

    assert "provider_rejected" in html
    assert "Injected failure for a:1" in html
    assert f'action="/generations/{generation.id}/retry"' in html
    assert f'action="/generations/{generation.id}/cancel"' not in html
    assert html.count("csrfmiddlewaretoken") >= 2


def test_a_processing_generation_can_be_cancelled_and_shows_queued_items(client, owner):
    generation = make_video(owner, items=2, run=False)
    generation_prepare(generation_id=generation.id)

    html = page(client, generation)

    assert "badge--processing" in html
    assert f'action="/generations/{generation.id}/cancel"' in html
    assert f'action="/generations/{generation.id}/retry"' not in html
    assert "Queued" in html
    assert "<video" not in html
    assert f"/api/generations/{generation.id}/download/" not in html


# Attempt log --------------------------------------------------------------------------


def history_of(html, item):
    """The folded attempt log of `item`'s card: its opening tag and its content."""
    found = re.search(rf'(<details id="history-{item.id}-[^"]*"[^>]*>)(.*?)</details>', html, re.S)
    assert found, f"no attempt log for item {item.number}"
    return found.group(1), found.group(2)


def test_each_item_lists_its_attempts_folded_under_its_card(client, owner):
    generation = make_images(owner, transient_fail_items=["a:1"])
    retried = Item.objects.get(generation=generation, variant__label="a", number=1)
    item_render(item_id=retried.id, claim_token="second-delivery")
    worker = Attempt.objects.get(item=retried, number=2).worker

    html = page(client, generation)

    opening, log = history_of(html, retried)
    assert 'class="item-history"' in opening
    assert 'hx-preserve="true"' in opening
    assert " open" not in opening
    assert "<summary>History (2 attempts)</summary>" in log
    assert '<ol class="attempt-log" aria-label="Attempts at image 1 of variant a">' in log
    first, second = re.findall(r'<li class="attempt">(.*?)</li>', log, re.S)
    assert "Attempt 1" in first
    assert "<dt>Reason</dt><dd>First run</dd>" in first
    assert '<span class="badge badge--retrying">Failed, retried</span>' in first
    assert "<code>provider_timeout</code> — Injected timeout for a:1" in first
    assert "Attempt 2" in second
    assert "<dt>Reason</dt><dd>Automatic retry</dd>" in second
    assert '<span class="badge badge--completed">Completed</span>' in second
    assert re.search(r"<dt>Duration</dt><dd>\d+\.\d s</dd>", second)
    assert f"<dt>Worker</dt><dd>{worker}</dd>" in second
    assert "detail-error" not in second
    assert re.search(r'<dt>Started</dt><dd><time datetime="[^"]+">', second)
    other = Item.objects.get(generation=generation, variant__label="b")
    assert "<summary>History (1 attempt)</summary>" in history_of(html, other)[1]


def test_items_never_attempted_have_no_history(client, owner):
    generation = make_images(owner, run=False)

    html = page(client, generation)

    assert 'class="item-history"' not in html
    assert "History (" not in html


def test_the_open_log_survives_polls_until_an_attempt_starts_or_ends(client, owner):
    generation = make_video(owner, run=False)
    generation_prepare(generation_id=generation.id)
    item = generation.items.get()
    item_claim(item_id=item.id, claim_token="w1")

    running = live(client, generation)
    opening, log = history_of(running, item)
    assert f'id="history-{item.id}-1-running"' in opening
    assert '<span class="badge badge--processing">Running</span>' in log
    assert '<dt>Duration</dt><dd><span class="muted">Still running</span></dd>' in log
    # A poll with nothing new keeps the same id: htmx keeps the element, open or not.
    assert history_of(live(client, generation), item)[0] == opening

    Attempt.objects.filter(item=item).update(
        outcome=AttemptOutcome.LOST, ended_at=timezone.now(), error_code="worker_lost"
    )
    ended = history_of(live(client, generation), item)
    assert f'id="history-{item.id}-1-lost"' in ended[0]
    assert '<span class="badge badge--lost">Worker lost</span>' in ended[1]


def test_another_user_gets_404_for_a_page_with_attempts(owner, other_user):
    generation = make_images(owner, transient_fail_items=["a:1"])
    assert Attempt.objects.filter(generation=generation).count() == 2
    other = signed_in(other_user)

    assert other.get(f"/generations/{generation.id}").status_code == 404
    assert other.get(f"/generations/{generation.id}/live").status_code == 404


# Lineage ------------------------------------------------------------------------------


def test_lineage_links_parent_and_regenerations(client, owner):
    original = make_images(owner)
    child = services.generation_regenerate(generation=original, owner=owner)

    parent_html = page(client, original)
    child_html = page(client, child)

    assert "Lineage" in parent_html
    assert f'href="/generations/{child.id}"' in parent_html
    assert f"/compare?a={original.id}&amp;b={child.id}" in parent_html
    assert f'href="/generations/{original.id}"' in child_html
    assert "Regenerated from" in child_html


def test_original_without_regenerations_has_no_lineage_section(client, owner):
    html = page(client, make_images(owner))
    assert 'id="lineage-heading"' not in html


# Live region --------------------------------------------------------------------------


def test_live_region_polls_while_running_and_stops_once_ended(client, owner):
    generation = make_video(owner, run=False)

    html = page(client, generation)
    assert 'aria-live="polite"' in html
    assert f'hx-get="/generations/{generation.id}/live"' in html
    assert TRIGGER in html
    assert 'hx-swap="outerHTML"' in html

    fragment = live(client, generation)
    assert '<div id="live-region"' in fragment
    assert "<html" not in fragment
    assert TRIGGER in fragment

    run_in_process(generation)
    fragment = live(client, generation, **{"HX-Request": "true"})
    assert 'id="live-region"' in fragment
    assert TRIGGER not in fragment
    assert "hx-get" not in fragment.split('id="stages"')[0]
    assert "<video " in fragment
    # The response that sees the end brings the evaluation along, out of band.
    stages = re.search(r'<section id="stages"[^>]*>', fragment).group(0)
    assert 'hx-swap-oob="true"' in stages
    assert TRIGGER not in page(client, generation)


def test_live_region_is_the_same_markup_as_on_the_page(client, owner):
    generation = make_images(owner)
    html = page(client, generation)
    fragment = live(client, generation).strip()

    region = html[html.index('<div id="live-region"') :]
    # Players and signed URLs differ per request; compare the structure around them.
    strip = re.compile(r'(src|href|poster|value)="[^"]*"')
    assert strip.sub("", region).startswith(strip.sub("", fragment)[:2000])


def test_live_players_are_preserved_across_swaps(client, owner):
    generation = make_video(owner)
    fragment = live(client, generation)
    item = generation.items.get()
    assert f'<video id="player-{item.id}" hx-preserve="true"' in fragment


# Access -------------------------------------------------------------------------------


def test_another_users_generation_is_404_on_detail_live_and_compare(owner, other_user):
    generation = make_images(owner)
    mine = make_images(other_user)
    other = signed_in(other_user)

    assert other.get(f"/generations/{generation.id}").status_code == 404
    assert other.get(f"/generations/{generation.id}/live").status_code == 404
    assert other.get(f"/compare?a={generation.id}&b={mine.id}").status_code == 404
    assert other.get(f"/compare?a={mine.id}&b={generation.id}").status_code == 404
    assert other.get(f"/compare?a={generation.id}").status_code == 404


def test_missing_and_malformed_ids_are_404(client, owner):
    generation = make_images(owner)
    assert client.get(f"/generations/{uuid.uuid4()}").status_code == 404
    assert client.get(f"/compare?a={generation.id}&b=not-a-uuid").status_code == 404
    assert client.get(f"/compare?a={uuid.uuid4()}&b={generation.id}").status_code == 404


def test_deleted_generation_is_404(client, owner):
    generation = make_images(owner)
    services.generation_delete(generation=generation)
    assert client.get(f"/generations/{generation.id}").status_code == 404


def test_pages_need_a_signed_in_user(owner):
    generation = make_images(owner, run=False)
    for url in (f"/generations/{generation.id}", f"/generations/{generation.id}/live", "/compare"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


# Compare ------------------------------------------------------------------------------


def test_compare_highlights_the_parameters_that_differ(client, owner):
    a = make_images(owner, seed=1, width=64)
    b = make_images(owner, seed=2, width=128)

    response = client.get(f"/compare?a={a.id}&b={b.id}")

    assert response.status_code == 200
    html = response.content.decode()
    differing = re.findall(
        r'<tr class="compare-table__differs">\s*<th scope="row"><code>([a-z_]+)</code>', html
    )
    assert set(differing) == {"seed", "width"}
    rows = re.findall(r'<th scope="row"><code>([a-z_]+)</code>', html)
    assert {"kind", "prompt", "height", "variants"} <= set(rows)
    assert "2 parameters differ" in html
    assert html.count('class="compare-side"') == 2
    assert html.count('class="item-card__image"') == 4
    assert f'href="/generations/{a.id}"' in html


def test_compare_without_both_ids_offers_the_users_recent_generations(client, owner, other_user):
    mine = make_images(owner, run=False)
    theirs = make_images(other_user, run=False)

    html = client.get(f"/compare?a={mine.id}").content.decode()

    assert '<label for="compare-a">' in html
    assert '<select id="compare-b" name="b" required>' in html
    assert f'<option value="{mine.id}" selected>' in html
    assert str(theirs.id) not in html


def test_compare_same_generation_twice_asks_for_another(client, owner):
    generation = make_images(owner, run=False)
    html = client.get(f"/compare?a={generation.id}&b={generation.id}").content.decode()
    assert "pick two different ones" in html


# Queries ------------------------------------------------------------------------------


def _queries(client, generation):
    with CaptureQueriesContext(connection) as queries:
        page(client, generation)
    return len(queries)


def _retry_queued(generation):
    """Render again each item a transient failure put back in the queue."""
    for item in Item.objects.filter(generation=generation, status="queued"):
        item_render(item_id=item.id, claim_token="second-delivery")


def test_detail_queries_do_not_grow_with_the_number_of_items(client, owner):
    small = make_video(owner, items=1, variants=("soft", "ultra"))
    # Four times the items, and those of soft with two attempts each.
    failing = [f"soft:{number}" for number in range(1, 5)]
    large = make_video(owner, items=4, variants=("soft", "ultra"), transient_fail_items=failing)
    _retry_queued(large)
    assert Attempt.objects.filter(generation=large).count() == 12

    small_count, large_count = _queries(client, small), _queries(client, large)

    # Session and user, owned_generation, generation_detail's five, then the timeline's
    # two (the generation's own events, its items' events counted).
    assert small_count == large_count == 10


def test_lineage_costs_one_query_however_many_regenerations(client, owner):
    original = make_images(owner)
    before = _queries(client, original)
    services.generation_regenerate(generation=original, owner=owner)
    one = _queries(client, original)
    services.generation_regenerate(generation=original, owner=owner)
    services.generation_regenerate(generation=original, owner=owner)

    assert one == before + 1
    assert _queries(client, original) == one


def test_live_queries_do_not_grow_with_the_number_of_items(client, owner):
    small = make_video(owner, items=1)
    large = make_video(owner, items=4, transient_fail_items=["soft:1", "soft:3"])
    _retry_queued(large)
    counts = []
    for generation in (small, large):
        with CaptureQueriesContext(connection) as queries:
            live(client, generation)
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 10


def test_the_timeline_reads_the_event_log(client, owner, staff_user):
    generation = make_images(owner, variants=["a", "b"], fail_items=["b:1"])
    services.generation_retry(generation=generation, by=staff_user)

    html = client.get(f"/generations/{generation.id}").content.decode()

    timeline = html.split('<ol class="timeline">')[1].split("</ol>")[0]
    for label in ("Created", "Sent to the workers", "Started", "Ended with some items failed"):
        assert label in timeline
    assert "Retried</span>" in timeline
    assert "by staff" in timeline
    assert "by you" in timeline
    assert "Items: 2 started, 1 completed, 1 failed." in html


def test_a_cancelled_generation_offers_resume(client, owner):
    generation = make_images(owner, run=False)
    services.generation_cancel(generation=generation)

    html = client.get(f"/generations/{generation.id}").content.decode()

    assert ">Resume</button>" in html
    assert "Retry failed items" not in html
