"""The list pages (history, its live cards, trash, library) and the actions on one
generation (regenerate, retry, cancel, delete, restore)."""

import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from generations.models import Generation
from generations.tests.factories import GenerationFactory, ItemFactory, VariantFactory
from generations.tests.pipeline_helpers import make_images, run_pipeline
from history.views import lists

pytestmark = pytest.mark.django_db


def text(response):
    return response.content.decode()


def generation(owner, **fields):
    fields.setdefault("total_items", 4)
    return GenerationFactory(owner=owner, **fields)


def generation_with_thumbnail(gen):
    variant = VariantFactory(generation=gen, label="soft", position=0)
    ItemFactory(
        variant=variant,
        number=1,
        status="completed",
        thumbnail_key=f"generations/{gen.id}/soft/scene_1_thumb.jpg",
    )
    return gen


def card_ids(response):
    return re.findall(r'<article class="card gen-card[^"]*" id="card-([0-9a-f-]+)"', text(response))


def created_on(gen, day):
    Generation.objects.filter(id=gen.id).update(created_at=day)


# History ------------------------------------------------------------------------------


def test_history_lists_every_generation_newest_first_whatever_its_status(owner_client, owner):
    made = [
        generation(owner, status=status, title=f"Run {status}")
        for status in ("pending", "processing", "failed", "cancelled", "completed")
    ]
    for age, gen in enumerate(reversed(made)):
        created_on(gen, timezone.now() - timedelta(hours=age))

    response = owner_client.get("/history")

    assert response.status_code == 200
    assert card_ids(response) == [str(gen.id) for gen in reversed(made)]
    body = text(response)
    for status in ("Pending", "Processing", "Failed", "Cancelled", "Completed"):
        assert f"Run {status.lower()}" in body
        assert f'class="badge badge--{status.lower()}">{status}<' in body


def test_history_hides_other_users_and_deleted_generations(owner_client, owner, other_user):
    mine = generation(owner, title="Mine")
    generation(other_user, title="Someone else's")
    generation(owner, title="Binned", deleted_at=timezone.now())

    response = owner_client.get("/history")

    assert card_ids(response) == [str(mine.id)]


def test_card_shows_kind_progress_dates_time_cost_and_placeholder(owner_client, owner):
    generation(
        owner,
        kind="video_ad",
        title="",
        prompt="A bright kitchen, a family cooking pasta together " * 3,
        status="processing",
        total_items=16,
        completed_items=11,
        failed_items=1,
        cost_estimate="0.1600",
        actual_cost="0.1100",
    )

    body = text(owner_client.get("/history"))

    assert 'class="badge badge--kind">Video ad<' in body
    assert "A bright kitchen, a family cooking pasta together A bright" in body
    assert "11 of 16 scenes, 1 failed" in body
    assert 'aria-valuemax="16" aria-valuenow="12"' in body
    assert "ago)" in body
    assert "running…" in body
    assert "0.1100" in body
    assert "estimate 0.1600" in body
    assert "In progress" in body  # no thumbnail yet


def test_card_of_finished_generation_shows_its_first_thumbnail_and_time(owner_client, owner):
    done = make_images(owner)

    body = text(owner_client.get("/history"))

    assert done.status == "completed"
    assert "2 of 2 images" in body
    thumbnail = re.search(r'<img src="([^"]+)" alt=""', body)
    assert thumbnail is not None
    assert "scene_1_thumb" in thumbnail.group(1) or "/storage/objects/" in thumbnail.group(1)
    assert " s</dd>" in body  # generation time


def test_card_actions_follow_the_status(owner_client, owner):
    running = generation(owner, status="processing")
    failed = generation(owner, status="failed", failed_items=4)
    completed = generation(owner, status="completed", completed_items=4)

    body = text(owner_client.get("/history"))

    assert f"/generations/{running.id}/cancel" in body
    assert f"/generations/{running.id}/retry" not in body
    assert f"/generations/{failed.id}/retry" in body
    assert f"/generations/{failed.id}/cancel" not in body
    assert f"/generations/{completed.id}/retry" not in body
    assert f"/generations/{completed.id}/cancel" not in body
    for gen in (running, failed, completed):
        assert f"/generations/{gen.id}/regenerate" in body
        assert f"/generations/{gen.id}/delete?next=%2Fhistory" in body
        assert f'href="/generations/{gen.id}"' in body


def test_only_running_cards_poll_for_themselves(owner_client, owner):
    pending = generation(owner, status="pending")
    processing = generation(owner, status="processing")
    partial = generation(owner, status="partial_success", completed_items=3, failed_items=1)

    for gen in (pending, processing):
        fragment = text(owner_client.get(f"/history/cards/{gen.id}"))
        assert f'hx-get="/history/cards/{gen.id}"' in fragment
        assert 'hx-trigger="every 2s"' in fragment
        assert 'hx-swap="outerHTML"' in fragment
        assert "<html" not in fragment

    fragment = text(owner_client.get(f"/history/cards/{partial.id}"))
    assert f'id="card-{partial.id}"' in fragment
    assert "hx-trigger" not in fragment


def test_polled_card_stops_polling_once_its_generation_ends(owner_client, owner):
    gen = make_images(owner, run=False)
    assert "hx-trigger" in text(owner_client.get(f"/history/cards/{gen.id}"))

    run_pipeline(gen)

    fragment = text(owner_client.get(f"/history/cards/{gen.id}"))
    assert "hx-trigger" not in fragment
    assert "2 of 2 images" in fragment


def test_polled_card_actions_return_to_the_page_it_sits_on(owner_client, owner):
    gen = generation(owner, status="processing")

    fragment = text(
        owner_client.get(
            f"/history/cards/{gen.id}",
            headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/history?page=2"},
        )
    )

    assert 'name="next" value="/history?page=2"' in fragment


def test_history_query_count_does_not_grow_with_the_cards(
    owner_client, owner, django_assert_max_num_queries
):
    for _ in range(5):
        generation_with_thumbnail(generation(owner, status="completed", completed_items=1))
    with django_assert_max_num_queries(4):
        assert len(card_ids(owner_client.get("/history"))) == 5

    for _ in range(15):
        generation_with_thumbnail(generation(owner, status="completed", completed_items=1))
    with django_assert_max_num_queries(4):
        assert len(card_ids(owner_client.get("/history"))) == 20


# Filters, search and pages ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", {"failed"}),
        ("status=failed,cancelled", {"failed", "cancelled"}),
        ("status=failed&status=cancelled", {"failed", "cancelled"}),
        ("status=pending,processing", {"pending", "processing"}),
        ("", {"pending", "processing", "failed", "cancelled", "completed"}),
    ],
)
def test_history_filters_by_one_or_several_statuses(owner_client, owner, query, expected):
    by_status = {
        status: generation(owner, status=status)
        for status in ("pending", "processing", "failed", "cancelled", "completed")
    }

    response = owner_client.get(f"/history?{query}")

    assert set(card_ids(response)) == {str(by_status[status].id) for status in expected}


def test_a_combination_of_statuses_stays_selected(owner_client, owner):
    body = text(owner_client.get("/history?status=failed&status=cancelled"))

    assert '<option value="failed,cancelled" selected>Failed or Cancelled</option>' in body


def test_history_filters_by_kind_and_searches_title_prompt_and_source(owner_client, owner):
    kettle = generation(owner, kind="image", title="Kettle", prompt="steam")
    pasta = generation(owner, kind="video_ad", title="Dinner", prompt="Fresh pasta")
    sourced = generation(owner, kind="video_ad", title="Ad", source_url="https://ex.com/pasta")

    assert card_ids(owner_client.get("/history?kind=image")) == [str(kettle.id)]
    assert set(card_ids(owner_client.get("/history?q=pasta"))) == {str(pasta.id), str(sourced.id)}
    assert card_ids(owner_client.get("/history?q=kettle")) == [str(kettle.id)]


def test_history_filters_by_an_inclusive_date_range(owner_client, owner):
    now = timezone.now()
    old, mid, new = (generation(owner, title=name) for name in ("old", "mid", "new"))
    created_on(old, now - timedelta(days=20))
    created_on(mid, now - timedelta(days=10))
    day = timezone.localdate(now - timedelta(days=10)).isoformat()

    assert card_ids(owner_client.get(f"/history?created_after={day}&created_before={day}")) == [
        str(mid.id)
    ]
    assert set(card_ids(owner_client.get(f"/history?created_after={day}"))) == {
        str(mid.id),
        str(new.id),
    }
    assert card_ids(owner_client.get(f"/history?created_before={day}")) == [
        str(mid.id),
        str(old.id),
    ]


def test_invalid_filters_are_explained_next_to_their_field(owner_client, owner):
    generation(owner)

    body = text(owner_client.get("/history?created_after=2024-05-02&created_before=2024-05-01"))

    assert 'id="id_created_before_error"' in body
    assert "Must be on or after the From date." in body
    assert 'aria-describedby="id_created_before_error"' in body

    body = text(owner_client.get("/history?status=bogus"))
    assert 'id="id_status_error"' in body


def test_empty_history_invites_a_first_generation(owner_client):
    body = text(owner_client.get("/history"))

    assert "No generations yet" in body
    assert 'href="/generate">New generation</a>' in body
    assert "No generation matches" not in body


def test_filters_that_hide_everything_say_so(owner_client, owner):
    generation(owner, title="Kettle")

    body = text(owner_client.get("/history?q=nothing-like-it"))

    assert "No generation matches these filters" in body
    assert "No generations yet" not in body
    assert 'href="/history">Clear filters</a>' in body


def test_history_pages_keep_the_filters(owner_client, owner, monkeypatch):
    monkeypatch.setattr(lists, "HISTORY_PAGE_SIZE", 2)
    made = [generation(owner, kind="image") for _ in range(5)]
    generation(owner, kind="speech")
    for age, gen in enumerate(made):
        created_on(gen, timezone.now() - timedelta(minutes=age))

    first = owner_client.get("/history?kind=image")
    third = owner_client.get("/history?kind=image&page=3")

    assert card_ids(first) == [str(made[0].id), str(made[1].id)]
    assert "Page 1 of 3" in text(first)
    assert 'href="?kind=image&amp;page=2"' in text(first)
    assert card_ids(third) == [str(made[4].id)]
    assert 'href="?kind=image&amp;page=2"' in text(third)
    assert "Page 3 of 3" in text(third)
    assert card_ids(owner_client.get("/history?kind=image&page=oops")) == card_ids(first)


def test_history_counts_pages_only_up_to_the_cap(owner_client, owner, settings, monkeypatch):
    settings.API_COUNT_CAP = 3
    monkeypatch.setattr(lists, "HISTORY_PAGE_SIZE", 2)
    for _ in range(7):
        generation(owner)

    body = text(owner_client.get("/history"))

    assert "Page 1 of 2+" in body
    assert 'rel="next"' in body


# Trash --------------------------------------------------------------------------------


def test_trash_lists_deleted_generations_with_their_purge_date(owner_client, owner, settings):
    settings.TRASH_RETENTION_DAYS = 30
    deleted_at = timezone.now() - timedelta(days=2)
    binned = generation(owner, title="Binned", deleted_at=deleted_at)
    generation(owner, title="Expired", deleted_at=timezone.now() - timedelta(days=31))
    generation(owner, title="Kept")

    response = owner_client.get("/history/trash")

    body = text(response)
    assert response.status_code == 200
    assert "Binned" in body
    assert "Expired" not in body
    assert "Kept" not in body
    purge_day = timezone.localtime(deleted_at + timedelta(days=30)).strftime("%-d %b %Y")
    assert purge_day in body
    assert f'action="/generations/{binned.id}/restore"' in body


def test_empty_trash_says_so(owner_client):
    assert "The trash is empty" in text(owner_client.get("/history/trash"))


# Library ------------------------------------------------------------------------------


def test_library_shows_completed_and_partial_generations_in_a_grid(owner_client, owner):
    completed = generation_with_thumbnail(generation(owner, status="completed", completed_items=4))
    partial = generation(owner, status="partial_success", completed_items=3, failed_items=1)
    generation(owner, status="failed", failed_items=4)
    generation(owner, status="processing")

    response = owner_client.get("/library")

    body = text(response)
    assert response.status_code == 200
    assert '<ul class="grid library"' in body
    assert str(completed.id) in body
    assert str(partial.id) in body
    assert body.count('<li class="card tile">') == 2
    assert body.count('<img src="') == 1
    assert "No preview" in body


def test_library_filters_by_variant_label_kind_date_and_search(owner_client, owner):
    soft = generation(owner, kind="video_ad", status="completed", title="Soft one", input={})
    VariantFactory(generation=soft, label="soft", position=0)
    bold = generation(owner, kind="image", status="completed", title="Bold one")
    VariantFactory(generation=bold, label="bold", position=0)
    created_on(bold, timezone.now() - timedelta(days=40))

    def titles(query):
        body = text(owner_client.get(f"/library?{query}"))
        return {name for name in ("Soft one", "Bold one") if name in body}

    assert titles("variant=soft") == {"Soft one"}
    assert titles("variant=SOFT") == {"Soft one"}
    assert titles("kind=image") == {"Bold one"}
    assert titles("q=bold") == {"Bold one"}
    recent = timezone.localdate() - timedelta(days=5)
    assert titles(f"created_after={recent.isoformat()}") == {"Soft one"}
    assert "Nothing in your library matches" in text(owner_client.get("/library?variant=ultra"))


def test_library_pages_are_capped(owner_client, owner, monkeypatch):
    monkeypatch.setattr(lists, "LIBRARY_PAGE_SIZE", 2)
    for _ in range(3):
        generation(owner, status="completed", completed_items=4)

    body = text(owner_client.get("/library?page=2"))

    assert body.count('<li class="card tile">') == 1
    assert "Page 2 of 2" in body


def test_empty_library_says_so(owner_client):
    assert "Your library is empty" in text(owner_client.get("/library"))


# Access -------------------------------------------------------------------------------

PAGES = ["/history", "/history/trash", "/library", "/generate"]
GENERATION_ROUTES = [
    ("get", "/history/cards/{id}"),
    ("get", "/generations/{id}/edit"),
    ("post", "/generations/{id}/regenerate"),
    ("post", "/generations/{id}/retry"),
    ("post", "/generations/{id}/cancel"),
    ("get", "/generations/{id}/delete"),
    ("post", "/generations/{id}/delete"),
    ("post", "/generations/{id}/restore"),
]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(url):
    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize(("method", "route"), GENERATION_ROUTES)
def test_anonymous_actions_are_sent_to_sign_in(owner, method, route):
    gen = generation(owner, status="failed", failed_items=4)

    response = getattr(Client(), method)(route.format(id=gen.id))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    gen.refresh_from_db()
    assert gen.status == "failed"
    assert gen.deleted_at is None


@pytest.mark.parametrize(("method", "route"), GENERATION_ROUTES)
def test_another_users_generation_is_not_found(owner_client, other_user, method, route):
    theirs = generation(other_user, status="processing")
    binned = generation(other_user, status="failed", deleted_at=timezone.now())

    for gen in (theirs, binned):
        response = getattr(owner_client, method)(route.format(id=gen.id))
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "processing"
    assert theirs.deleted_at is None
    assert Generation.objects.filter(parent=theirs).count() == 0


@pytest.mark.parametrize(("method", "route"), GENERATION_ROUTES)
def test_an_unknown_generation_is_not_found(owner_client, method, route):
    response = getattr(owner_client, method)(route.format(id=uuid.uuid4()))

    assert response.status_code == 404


@pytest.mark.parametrize(
    "route",
    [
        "/generations/{id}/regenerate",
        "/generations/{id}/retry",
        "/generations/{id}/cancel",
        "/generations/{id}/restore",
    ],
)
def test_actions_refuse_get(owner_client, owner, route):
    gen = generation(owner)

    assert owner_client.get(route.format(id=gen.id)).status_code == 405


def test_posts_need_the_csrf_token(owner):
    gen = generation(owner, status="processing")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)

    assert strict.post(f"/generations/{gen.id}/cancel").status_code == 403
    assert strict.post(f"/generations/{gen.id}/delete").status_code == 403
    assert strict.post("/generate", {"kind": "image", "prompt": "x"}).status_code == 403
    gen.refresh_from_db()
    assert gen.status == "processing"
    assert gen.deleted_at is None

    page = text(strict.get("/history"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = strict.post(f"/generations/{gen.id}/cancel", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    gen.refresh_from_db()
    assert gen.status == "cancelled"


# Actions ------------------------------------------------------------------------------


def messages_of(client, url="/history"):
    return re.findall(r'<li class="message message--(\w+)">([^<]*)</li>', text(client.get(url)))


def test_cancel_stops_a_running_generation_and_returns_to_next(owner_client, owner):
    gen = make_images(owner, run=False)

    response = owner_client.post(f"/generations/{gen.id}/cancel", {"next": "/history?kind=image"})

    assert response.status_code == 302
    assert response["Location"] == "/history?kind=image"
    gen.refresh_from_db()
    assert gen.status == "cancelled"
    assert messages_of(owner_client)[0][0] == "success"


def test_cancel_of_an_ended_generation_explains_why_not(owner_client, owner):
    gen = generation(owner, status="completed", completed_items=4)

    response = owner_client.post(f"/generations/{gen.id}/cancel")

    assert response["Location"] == f"/generations/{gen.id}"
    [(level, message)] = messages_of(owner_client)
    assert level == "error"
    assert "already completed" in message


def test_an_unsafe_next_is_ignored(owner_client, owner):
    gen = generation(owner, status="processing")

    response = owner_client.post(f"/generations/{gen.id}/cancel", {"next": "https://evil.example/"})

    assert response["Location"] == f"/generations/{gen.id}"


def test_retry_requeues_failed_items(owner_client, owner, sent):
    gen = make_images(owner, fail_items=["b:1"])
    assert gen.status == "partial_success"

    response = owner_client.post(f"/generations/{gen.id}/retry")

    assert response["Location"] == f"/generations/{gen.id}"
    gen.refresh_from_db()
    assert gen.status == "processing"
    assert gen.failed_items == 0
    [(level, message)] = messages_of(owner_client)
    assert (level, message) == ("success", "Retrying 1 image; the completed ones are kept.")


def test_retry_with_nothing_to_retry_is_refused(owner_client, owner):
    gen = generation(owner, status="pending")

    owner_client.post(f"/generations/{gen.id}/retry")

    assert messages_of(owner_client)[0][0] == "error"


def test_regenerate_goes_to_the_new_generation(owner_client, owner):
    original = make_images(owner, run=False)

    response = owner_client.post(f"/generations/{original.id}/regenerate")

    child = Generation.objects.get(parent=original)
    assert response["Location"] == f"/generations/{child.id}"
    assert child.input["seed"] == original.input["seed"]
    assert child.owner == owner


def test_regenerate_over_the_limit_says_why(owner_client, owner, settings):
    settings.GENVAULT_MAX_ACTIVE_GENERATIONS = 1
    original = make_images(owner, run=False)

    response = owner_client.post(f"/generations/{original.id}/regenerate")

    assert response["Location"] == f"/generations/{original.id}"
    assert not Generation.objects.filter(parent=original).exists()
    [(level, message)] = messages_of(owner_client)
    assert level == "error"
    assert "pending or processing" in message


def test_delete_asks_first_then_moves_to_trash_and_restore_brings_it_back(owner_client, owner):
    gen = generation(owner, title="Spring ad", status="completed", completed_items=4)

    confirm = owner_client.get(f"/generations/{gen.id}/delete?next=/history%3Fkind%3Dimage")

    body = text(confirm)
    assert confirm.status_code == 200
    assert "Delete “Spring ad”?" in body
    assert "You can restore it until" in body
    assert 'name="next" value="/history?kind=image"' in body
    assert 'href="/history?kind=image">Cancel</a>' in body
    gen.refresh_from_db()
    assert gen.deleted_at is None

    response = owner_client.post(f"/generations/{gen.id}/delete", {"next": "/history?kind=image"})

    assert response["Location"] == "/history?kind=image"
    gen.refresh_from_db()
    assert gen.deleted_at is not None
    assert str(gen.id) not in text(owner_client.get("/history"))
    assert "Spring ad" in text(owner_client.get("/history/trash"))

    response = owner_client.post(f"/generations/{gen.id}/restore")

    assert response["Location"] == "/history/trash"
    gen.refresh_from_db()
    assert gen.deleted_at is None
    assert str(gen.id) in text(owner_client.get("/history"))


def test_confirming_delete_of_a_running_generation_says_it_is_cancelled_first(owner_client, owner):
    gen = generation(owner, status="processing")

    assert "cancelled first" in text(owner_client.get(f"/generations/{gen.id}/delete"))

    assert (
        owner_client.get(f"/generations/{gen.id}/delete").context["back_url"]
        == f"/generations/{gen.id}"
    )


def test_delete_from_the_detail_page_returns_to_the_history(owner_client, owner):
    gen = generation(owner, status="completed", completed_items=4)

    response = owner_client.post(
        f"/generations/{gen.id}/delete", {"next": f"/generations/{gen.id}"}
    )

    assert response["Location"] == "/history"


def test_restore_of_a_generation_not_in_the_trash_is_refused(owner_client, owner):
    gen = generation(owner)

    owner_client.post(f"/generations/{gen.id}/restore")

    assert messages_of(owner_client)[0][0] == "error"
