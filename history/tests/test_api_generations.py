import io
import uuid
import zipfile

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from generations import manifest, services
from generations.models import Generation, Item
from generations.pipeline.lifecycle import item_claim, item_stop_cancelled
from generations.pipeline.prepare import generation_prepare
from generations.pipeline.render import item_render
from generations.tests.factories import (
    AttemptFactory,
    GenerationFactory,
    ItemFactory,
    VariantFactory,
)
from history.api import views as api_views
from history.tests.conftest import make_images, run_in_process
from storage.services import StorageUnavailable, object_open

pytestmark = pytest.mark.django_db

VIDEO = {
    "prompt": "A kettle",
    "scenes_per_variant": 1,
    "scene_seconds": 1,
    "width": 160,
    "height": 90,
    "fps": 12,
    "variants": ["soft"],
}


def _error(response):
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


# Create ---------------------------------------------------------------------------------


def test_create_records_a_pending_generation_and_enqueues_it(
    api, owner, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/generations/",
            {"kind": "video_ad", "title": "Kettle", "input": VIDEO},
            format="json",
        )

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    assert body["title"] == "Kettle"
    assert body["total_items"] == 1
    assert body["input"]["seed"] >= 0
    assert [v["label"] for v in body["variants"]] == ["soft"]
    assert body["variants"][0]["items"][0]["status"] == "queued"
    assert Generation.objects.get(id=body["id"]).owner == owner
    assert sent == [("generations.tasks.run_generation", uuid.UUID(body["id"]))]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "podcast"}, "kind"),
        (
            {"kind": "video_ad", "input": {"scenes_per_variant": 99, "prompt": "x"}},
            "input.scenes_per_variant",
        ),
        ({"kind": "video_ad", "input": {}}, "input.prompt"),
        ({"kind": "speech", "input": {"text": ""}}, "input.text"),
        ({"kind": "image", "input": "not an object"}, "input"),
        ({"kind": "image", "input": {"prompt": "x"}, "provider": "nope"}, "provider"),
        ({"kind": "image", "input": {"prompt": "x", "width": 63}}, "input.width"),
    ],
)
def test_create_names_the_bad_field(api, payload, field):
    response = api.post("/api/generations/", payload, format="json")

    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert not Generation.objects.exists()


@pytest.mark.parametrize("field", ["owner", "status", "completed_items", "actual_cost", "id"])
def test_fields_a_client_must_not_set_are_refused(api, field):
    response = api.post(
        "/api/generations/",
        {"kind": "image", "input": {"prompt": "x"}, field: "anything"},
        format="json",
    )

    assert response.status_code == 400
    assert field in _error(response)["fields"]


def test_malformed_json_is_a_400(api):
    response = api.post("/api/generations/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert _error(response)["code"] == "parse_error"


def test_oversized_body_is_a_400_not_a_500(api):
    response = api.post(
        "/api/generations/",
        {"kind": "image", "input": {"prompt": "x" * 2_000_000}},
        format="json",
    )

    assert response.status_code == 400
    assert _error(response)["code"] == "bad_request"


@override_settings(GENVAULT_MAX_ACTIVE_GENERATIONS=2)
def test_too_many_in_flight_answers_409(api, owner):
    make_images(owner, run=False)
    make_images(owner, run=False)

    response = api.post(
        "/api/generations/", {"kind": "image", "input": {"prompt": "x"}}, format="json"
    )

    assert response.status_code == 409
    error = _error(response)
    assert error["code"] == "limit_exceeded"
    assert "2 generations" in error["message"]


def test_upload_source_is_stored(api):
    with open(__file__, "rb") as handle:
        response = api.post(
            "/api/generations/",
            {"kind": "video_ad", "source_file": handle},
            format="multipart",
        )

    assert response.status_code == 201
    body = response.json()
    assert body["source_type"] == "upload"
    assert body["input"]["source_key"].endswith("/source/original.py")


def test_anonymous_requests_are_refused():
    response = APIClient().get("/api/generations/")

    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"


def test_session_writes_need_the_csrf_token(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)

    response = client.post(
        "/api/generations/", {"kind": "image", "input": {"prompt": "x"}}, format="json"
    )

    assert response.status_code == 403
    assert "CSRF" in _error(response)["message"]


# Read -----------------------------------------------------------------------------------


def test_list_is_newest_first_with_thumbnails(api, owner, completed):
    older = make_images(owner, run=False)
    Generation.objects.filter(id=older.id).update(
        created_at=completed.created_at.replace(year=2020)
    )

    response = api.get("/api/generations/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["id"] for row in results] == [str(completed.id), str(older.id)]
    assert results[0]["thumbnail_url"].startswith("http")
    assert results[1]["thumbnail_url"] is None
    assert results[0]["progress_percent"] == 100


def test_cursor_pages_are_stable_while_new_rows_arrive(api, owner):
    for _ in range(5):
        GenerationFactory(owner=owner)

    first = api.get("/api/generations/?page_size=2").json()
    GenerationFactory(owner=owner)  # arrives while the client pages
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()

    seen = [row["id"] for page in (first, second, third) for row in page["results"]]
    assert len(seen) == len(set(seen)) == 5
    assert third["next"] is None


def test_numbered_pages_count_up_to_the_cap(api, owner):
    for _ in range(5):
        GenerationFactory(owner=owner)

    with override_settings(API_COUNT_CAP=3):
        body = api.get("/api/generations/?page=1&page_size=2").json()

    assert body["count"] == 3
    assert body["count_is_capped"] is True
    assert len(body["results"]) == 2


def test_page_size_is_bounded(api, owner):
    for _ in range(3):
        GenerationFactory(owner=owner)

    body = api.get("/api/generations/?page_size=100000").json()

    assert len(body["results"]) == 3  # capped at API_MAX_PAGE_SIZE, not refused


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", {"failed"}),
        ("status=failed,completed", {"failed", "completed", "speech"}),
        ("kind=speech", {"speech"}),
        ("has_failures=true", {"failed"}),
        ("has_failures=false", {"completed", "speech"}),
        ("q=lighthouse", {"completed"}),
        ("q=LIGHT", {"completed"}),
        ("q=ad", {"failed"}),
        ("variant=ultra", {"failed"}),
        ("provider=other", {"speech"}),
    ],
)
def test_filters(api, owner, query, expected):
    named = {
        "completed": GenerationFactory(owner=owner, status="completed", title="Lighthouse at dusk"),
        "failed": GenerationFactory(
            owner=owner,
            status="failed",
            failed_items=1,
            total_items=1,
            source_url="https://cdn.example.com/ad.mp4",
        ),
        "speech": GenerationFactory(
            owner=owner, status="completed", kind="speech", provider="other"
        ),
    }
    VariantFactory(generation=named["failed"], label="ultra")
    GenerationFactory(status="failed", title="Lighthouse of someone else")

    response = api.get(f"/api/generations/?{query}")

    assert response.status_code == 200
    names = {
        name
        for name, g in named.items()
        if str(g.id) in {r["id"] for r in response.json()["results"]}
    }
    assert names == expected


def test_created_range_and_parent_filters(api, owner):
    parent = GenerationFactory(owner=owner)
    child = GenerationFactory(owner=owner, parent=parent)
    Generation.objects.filter(id=parent.id).update(created_at="2025-01-10T00:00:00Z")

    assert _ids(api.get(f"/api/generations/?parent={parent.id}")) == [str(child.id)]
    assert _ids(api.get("/api/generations/?created_before=2025-02-01T00:00:00Z")) == [
        str(parent.id)
    ]
    assert _ids(api.get("/api/generations/?created_after=2025-02-01T00:00:00Z")) == [str(child.id)]


@pytest.mark.parametrize(
    "query",
    ["status=running", "kind=podcast", "created_after=yesterday", "parent=42", "ordering=owner"],
)
def test_bad_filter_values_are_400(api, query):
    response = api.get(f"/api/generations/?{query}")

    if query == "ordering=owner":  # unknown ordering fields are ignored, as DRF does
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert _error(response)["fields"]


def test_ordering(api, owner):
    cheap = GenerationFactory(owner=owner, actual_cost="0.1", generation_time_seconds=9)
    dear = GenerationFactory(owner=owner, actual_cost="2.5", generation_time_seconds=3)
    running = GenerationFactory(owner=owner, actual_cost="0", generation_time_seconds=None)

    assert _ids(api.get("/api/generations/?ordering=-actual_cost")) == [
        str(dear.id),
        str(cheap.id),
        str(running.id),
    ]
    assert _ids(api.get("/api/generations/?ordering=generation_time_seconds")) == [
        str(dear.id),
        str(cheap.id),
    ]
    assert _ids(api.get("/api/generations/?ordering=created_at"))[0] == str(cheap.id)


def _ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_detail_has_variants_items_metadata_and_lineage(api, owner, completed):
    child = make_images(owner, run=False)
    Generation.objects.filter(id=child.id).update(parent=completed)

    body = api.get(f"/api/generations/{completed.id}/").json()

    assert body["lineage"] == {"parent": None, "regenerations": [str(child.id)]}
    assert body["metadata"]["prompts"]["a"] == ["A red kite over the dunes, soft natural light"]
    item = body["variants"][0]["items"][0]
    assert item["status"] == "completed"
    assert (item["width"], item["height"]) == (64, 64)
    assert item["content_type"] == "image/png"
    assert item["asset_url"].startswith("http")
    assert item["download_url"].endswith(f"/api/items/{item['id']}/download/")


def test_variants_and_items_lists(api, completed):
    variants = api.get(f"/api/generations/{completed.id}/variants/").json()
    assert [v["label"] for v in variants] == ["a", "b"]

    items = api.get(f"/api/variants/{variants[1]['id']}/items/").json()
    assert [s["number"] for s in items] == [1]
    assert api.get(f"/api/variants/{variants[1]['id']}/").json()["label"] == "b"
    assert api.get(f"/api/items/{items[0]['id']}/").json()["status"] == "completed"


def retried_images(owner):
    """An image generation whose item a:1 timed out once and then completed on its second
    attempt (rendered again as its retry's delivery would): two attempts at a:1, one at
    b:1."""
    generation = make_images(owner, transient_fail_items=["a:1"])
    retried = Item.objects.get(generation=generation, variant__label="a", number=1)
    item_render(item_id=retried.id, claim_token="second-delivery")
    generation.refresh_from_db()
    retried.refresh_from_db()
    assert generation.status == "completed"
    return generation, retried


ATTEMPT_FIELDS = {
    "item",
    "number",
    "reason",
    "queued_at",
    "started_at",
    "ended_at",
    "outcome",
    "error_code",
    "error_message",
    "retryable",
    "provider_job_id",
    "cost",
    "worker",
}


def test_item_attempts_list_the_log_first_attempt_first(api, owner):
    _, item = retried_images(owner)

    response = api.get(f"/api/items/{item.id}/attempts/")

    assert response.status_code == 200
    first, second = response.json()
    assert set(first) == ATTEMPT_FIELDS
    assert (first["item"], first["number"], second["number"]) == (str(item.id), 1, 2)
    assert (first["reason"], first["outcome"]) == ("first_run", "retrying")
    assert (first["error_code"], first["retryable"]) == ("provider_timeout", True)
    assert "Injected timeout for a:1" in first["error_message"]
    assert (second["reason"], second["outcome"]) == ("automatic_retry", "completed")
    assert (second["error_code"], second["retryable"]) == ("", None)
    assert second["cost"] == str(item.cost)
    assert second["ended_at"] >= second["started_at"] >= first["ended_at"]
    assert second["worker"]


def test_a_running_attempt_has_a_blank_outcome_and_no_end(api, owner):
    item = make_images(owner, run=False).items.first()
    item_claim(item_id=item.id, claim_token="w1")

    (running,) = api.get(f"/api/items/{item.id}/attempts/").json()

    assert (running["outcome"], running["ended_at"], running["error_code"]) == ("", None, "")


def test_an_item_never_attempted_has_an_empty_log(api, owner):
    item = make_images(owner, run=False).items.first()

    assert api.get(f"/api/items/{item.id}/attempts/").json() == []


def test_detail_nests_each_items_attempt_log(api, owner):
    generation, retried = retried_images(owner)

    body = api.get(f"/api/generations/{generation.id}/").json()

    items = {item["id"]: item for variant in body["variants"] for item in variant["items"]}
    assert [a["number"] for a in items[str(retried.id)]["attempt_log"]] == [1, 2]
    assert (
        items[str(retried.id)]["attempt_log"]
        == api.get(f"/api/items/{retried.id}/attempts/").json()
    )
    other = next(item for item_id, item in items.items() if item_id != str(retried.id))
    assert [(a["number"], a["outcome"]) for a in other["attempt_log"]] == [(1, "completed")]


def test_lists_of_items_do_not_carry_the_log(api, completed):
    variant = completed.variants.first()
    item = completed.items.first()

    assert "attempt_log" not in api.get(f"/api/variants/{variant.id}/items/").json()[0]
    assert "attempt_log" not in api.get(f"/api/items/{item.id}/").json()


def test_the_attempts_of_a_generation_in_the_trash_are_404(api, owner, completed):
    item = completed.items.first()
    api.delete(f"/api/generations/{completed.id}/")

    assert api.get(f"/api/items/{item.id}/attempts/").status_code == 404


def test_progress_has_an_etag_and_answers_304_when_unchanged(api, owner):
    generation = make_images(owner, run=False)

    first = api.get(f"/api/generations/{generation.id}/progress/")
    assert first.status_code == 200
    assert first.json()["percent"] == 0
    assert [v["label"] for v in first.json()["variants"]] == ["a", "b"]
    etag = first["ETag"]

    unchanged = api.get(f"/api/generations/{generation.id}/progress/", HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304

    run_in_process(generation)
    changed = api.get(f"/api/generations/{generation.id}/progress/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["status"] == "completed"
    assert changed.json()["percent"] == 100


def test_download_zip_holds_every_asset_and_a_manifest(api, completed):
    response = api.get(f"/api/generations/{completed.id}/download/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"a/scene_1.png", "a/scene_1_thumb.jpg", "b/scene_1.png", "manifest.json"} <= names


def test_item_download_redirects_to_a_short_lived_url(api, completed):
    item = completed.items.first()

    response = api.get(f"/api/items/{item.id}/download/")

    assert response.status_code == 302
    assert response["Location"].startswith("http")


def _storage_down(*args, **kwargs):
    raise StorageUnavailable("The media storage did not answer.")


def test_downloads_answer_503_in_the_error_shape_while_storage_is_down(api, completed, monkeypatch):
    item = completed.items.first()
    monkeypatch.setattr(api_views, "storage_check", _storage_down)
    monkeypatch.setattr(api_views, "object_exists", _storage_down)

    for url in (f"/api/generations/{completed.id}/download/", f"/api/items/{item.id}/download/"):
        response = api.get(url)
        assert response.status_code == 503, url
        assert response.json()["error"]["code"] == "storage_unavailable"


def test_a_zip_that_loses_storage_midway_breaks_instead_of_ending_short(
    api, completed, monkeypatch
):
    opened = []

    def open_once(key):
        opened.append(key)
        if len(opened) > 1:
            raise StorageUnavailable("The media storage went away.")
        return object_open(key)

    monkeypatch.setattr(manifest, "object_open", open_once)
    response = api.get(f"/api/generations/{completed.id}/download/")
    assert response.status_code == 200

    with pytest.raises(StorageUnavailable):
        b"".join(response.streaming_content)


def test_item_without_an_asset_has_nothing_to_download(api, owner):
    item = ItemFactory(variant__generation__owner=owner, status="failed")

    assert api.get(f"/api/items/{item.id}/download/").status_code == 404


def test_library_holds_completed_and_partial_generations_only(api, owner, completed):
    partial = make_images(owner, fail_items=["b:1"])
    make_images(owner, run=False)

    ids = _ids(api.get("/api/library/"))

    assert partial.status == "partial_success"
    assert set(ids) == {str(completed.id), str(partial.id)}


def test_stats_for_the_user_and_for_staff(api, owner, completed, staff_user):
    GenerationFactory(status="failed")  # someone else's

    mine = api.get("/api/stats/").json()
    assert mine["scope"] == "user"
    assert mine["total"] == 1

    assert api.get("/api/stats/?scope=all").status_code == 403
    assert api.get("/api/stats/?days=0").status_code == 400

    staff = APIClient()
    staff.force_authenticate(staff_user)
    assert staff.get("/api/stats/?scope=all").json()["total"] == 2


# Actions --------------------------------------------------------------------------------


def test_cancel_retry_regenerate_delete_restore(api, owner):
    pending = make_images(owner, run=False)
    cancelled = api.post(f"/api/generations/{pending.id}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert api.post(f"/api/generations/{pending.id}/cancel/").status_code == 409

    retried = api.post(f"/api/generations/{pending.id}/retry/")
    assert retried.status_code == 202
    assert retried.json()["status"] == "processing"

    regenerated = api.post(
        f"/api/generations/{pending.id}/regenerate/",
        {"title": "Again", "overrides": {"seed": 3}},
        format="json",
    )
    assert regenerated.status_code == 201
    assert regenerated.json()["lineage"]["parent"] == str(pending.id)
    assert regenerated.json()["input"]["seed"] == 3
    assert regenerated.json()["title"] == "Again"

    assert api.delete(f"/api/generations/{pending.id}/").status_code == 204
    assert api.get(f"/api/generations/{pending.id}/").status_code == 404
    assert _ids(api.get("/api/trash/")) == [str(pending.id)]
    restored = api.post(f"/api/generations/{pending.id}/restore/")
    assert restored.status_code == 200
    assert api.get(f"/api/generations/{pending.id}/").status_code == 200


def test_regenerate_with_bad_overrides_is_a_400(api, completed):
    response = api.post(
        f"/api/generations/{completed.id}/regenerate/",
        {"overrides": {"width": "wide"}},
        format="json",
    )

    assert response.status_code == 400
    assert "input.width" in _error(response)["fields"]


def test_an_unknown_input_field_is_a_400_that_names_it(api):
    response = api.post(
        "/api/generations/",
        {"kind": "video_ad", "input": {"prompt": "A kite", "scene_second": 5}},
        format="json",
    )

    assert response.status_code == 400
    assert list(_error(response)["fields"]) == ["input.scene_second"]
    assert not Generation.objects.exists()


def test_an_unknown_override_is_a_400_that_names_it(api, completed):
    response = api.post(
        f"/api/generations/{completed.id}/regenerate/",
        {"overrides": {"colour": "red"}},
        format="json",
    )

    assert response.status_code == 400
    assert list(_error(response)["fields"]) == ["input.colour"]


def test_retry_of_a_completed_generation_is_a_409(api, completed):
    response = api.post(f"/api/generations/{completed.id}/retry/")

    assert response.status_code == 409
    assert _error(response)["code"] == "conflict"


# Scoping ---------------------------------------------------------------------------------


def _routes(generation, variant, item):
    return [
        ("get", f"/api/generations/{generation}/"),
        ("delete", f"/api/generations/{generation}/"),
        ("post", f"/api/generations/{generation}/cancel/"),
        ("post", f"/api/generations/{generation}/retry/"),
        ("post", f"/api/generations/{generation}/regenerate/"),
        ("post", f"/api/generations/{generation}/restore/"),
        ("get", f"/api/generations/{generation}/progress/"),
        ("get", f"/api/generations/{generation}/variants/"),
        ("get", f"/api/generations/{generation}/download/"),
        ("get", f"/api/variants/{variant}/"),
        ("get", f"/api/variants/{variant}/items/"),
        ("get", f"/api/items/{item}/"),
        ("get", f"/api/items/{item}/download/"),
        ("get", f"/api/items/{item}/attempts/"),
    ]


def test_every_route_answers_404_for_another_users_ids_exactly_like_missing_ids(
    other_api, completed
):
    variant = completed.variants.first()
    item = completed.items.first()
    missing = uuid.uuid4()

    for (method, theirs), (_, absent) in zip(
        _routes(completed.id, variant.id, item.id), _routes(missing, missing, missing), strict=True
    ):
        foreign = getattr(other_api, method)(theirs, format="json")
        nothing = getattr(other_api, method)(absent, format="json")
        assert foreign.status_code == nothing.status_code == 404, theirs
        assert foreign.json() == nothing.json()
    completed.refresh_from_db()
    assert completed.deleted_at is None
    assert not Generation.objects.filter(parent=completed).exists()


def test_lists_never_show_another_users_generations(other_api, completed):
    for path in ("/api/generations/", "/api/library/", "/api/trash/"):
        assert _ids(other_api.get(path)) == []
    assert other_api.get("/api/stats/").json()["total"] == 0


def test_unknown_api_path_answers_json_404(api):
    response = api.get("/api/nothing-here/")

    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


# Limits and queries ---------------------------------------------------------------------


def test_create_is_throttled(api, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "create": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    from rest_framework.throttling import ScopedRateThrottle

    ScopedRateThrottle.THROTTLE_RATES = rates
    try:
        codes = [
            api.post(
                "/api/generations/", {"kind": "image", "input": {"prompt": "x"}}, format="json"
            ).status_code
            for _ in range(3)
        ]
    finally:
        from rest_framework.settings import api_settings

        ScopedRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    assert codes == [201, 201, 429]


@pytest.mark.parametrize("page_size", [10, 100])
def test_list_runs_a_constant_number_of_queries(
    api, owner, page_size, django_assert_max_num_queries
):
    for _ in range(12):
        ItemFactory(variant__generation__owner=owner, status="completed", thumbnail_key="t.jpg")

    with django_assert_max_num_queries(3):
        response = api.get(f"/api/generations/?page_size={page_size}")
    assert len(response.json()["results"]) == min(12, page_size)

    with django_assert_max_num_queries(4):
        api.get(f"/api/generations/?page=1&page_size={page_size}")


@pytest.mark.parametrize("items", [1, 4])
def test_detail_runs_a_constant_number_of_queries(api, owner, items, django_assert_max_num_queries):
    # Every item of variant a times out once: twice as many attempts as items there.
    failing = [f"a:{number}" for number in range(1, items + 1)]
    generation = make_images(owner, images_per_variant=items, transient_fail_items=failing)
    for item in Item.objects.filter(generation=generation, status="queued"):
        item_render(item_id=item.id, claim_token="second-delivery")

    # generation_detail's five: the generation with its metadata, variants, items, the
    # items' attempts, regenerations.
    with django_assert_max_num_queries(5):
        response = api.get(f"/api/generations/{generation.id}/")
    variant = response.json()["variants"][0]
    assert len(variant["items"]) == items
    assert all(len(item["attempt_log"]) == 2 for item in variant["items"])


@pytest.mark.parametrize("attempts", [1, 3])
def test_item_attempts_run_a_constant_number_of_queries(
    api, owner, attempts, django_assert_max_num_queries
):
    item = ItemFactory(variant__generation__owner=owner, attempts=attempts)
    for number in range(1, attempts + 1):
        AttemptFactory(item=item, number=number)

    # The item (scoped to its owner), then its attempts.
    with django_assert_max_num_queries(2):
        response = api.get(f"/api/items/{item.id}/attempts/")
    assert len(response.json()) == attempts


def test_progress_says_cancelling_until_the_running_items_have_stopped(api, owner):
    """A client that stops polling at the first final status never sees counters move
    after it."""
    generation = make_images(owner, run=False, variants=["a", "b"])
    generation_prepare(generation_id=generation.id)
    running = Item.objects.filter(generation=generation).order_by("variant__position")[0]
    claimed = item_claim(item_id=running.id, claim_token="w1")
    services.generation_cancel(generation=generation)

    during = api.get(f"/api/generations/{generation.id}/progress/").json()
    item_stop_cancelled(item=claimed, claim_token="w1")
    after = api.get(f"/api/generations/{generation.id}/progress/").json()

    assert (during["status"], during["pending_items"]) == ("cancelling", 1)
    assert (after["status"], after["pending_items"]) == ("cancelled", 0)
    assert after["cancelled_items"] == 2
