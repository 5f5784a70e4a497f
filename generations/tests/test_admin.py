"""The staff admin for generations, variants and items: lists (columns, filters, search,
counts, a constant number of queries), read-only change pages with players, every action
with its refusals, messages and admin log entries, and the permission limits."""

import ast
import re
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import factory
import pytest
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.db import connection
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone

import generations.admin
from generations.admin import actions
from generations.admin.display import PLAYERS
from generations.admin.generation import GenerationAdmin
from generations.admin.items import ItemAdmin
from generations.admin.lists import (
    EstimatedCountPaginator,
    LargeTableAdminMixin,
    table_row_estimate,
)
from generations.kinds import KINDS, GenerationKind
from generations.models import Attempt, Generation, Item, Variant
from generations.pipeline.lifecycle import item_claim
from generations.services import generation_delete
from generations.states import AttemptOutcome, GenerationStatus, ItemStatus, QueueReason
from generations.tests.factories import (
    AttemptFactory,
    GenerationFactory,
    GenerationMetadataFactory,
    ItemFactory,
    UserFactory,
    VariantFactory,
)
from generations.tests.pipeline_helpers import (
    create_video,
    item_of,
    processing_video,
    run_pipeline,
)
from storage.keys import generation_prefix
from storage.services import object_keys
from tests.tiers import require_postgresql

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:generations_generation_changelist")
ITEMS = reverse("admin:generations_item_changelist")
VARIANTS = reverse("admin:generations_variant_changelist")
STYLESHEET = f'<link rel="stylesheet" href="{static("css/admin.css")}">'


def change_url(obj):
    return reverse(f"admin:generations_{obj._meta.model_name}_change", args=[obj.pk])


def grant(user, *codenames):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="generations", codename__in=codenames)
    )


def listed(response):
    return [obj.pk for obj in response.context["cl"].result_list]


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def act(client, action, generations, **extra):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [g.pk for g in generations], **extra},
        follow=True,
    )


def log_messages(user, flag=CHANGE):
    return {
        entry.object_id: entry.change_message
        for entry in LogEntry.objects.filter(user=user, action_flag=flag)
    }


@pytest.fixture
def support(client, staff_user):
    """A support member who may view, change and delete (soft delete) generations."""
    grant(
        staff_user,
        *(
            f"{verb}_{model}"
            for verb in ("view", "change", "delete")
            for model in ("generation", "variant", "item")
        ),
    )
    client.force_login(staff_user)
    return client


@pytest.fixture
def viewer(client):
    """A staff member who may only view generations, variants and items."""
    user = UserFactory(username="viewer", is_staff=True)
    grant(user, "view_generation", "view_variant", "view_item")
    client.force_login(user)
    client.user = user
    return client


def completed_item(generation=None, *, number=1, **fields):
    variant = VariantFactory(generation=generation or GenerationFactory())
    prefix = f"generations/{variant.generation_id}/{variant.label}"
    return ItemFactory(
        variant=variant,
        number=number,
        status=ItemStatus.COMPLETED,
        asset_key=f"{prefix}/scene_{number}.mp4",
        thumbnail_key=f"{prefix}/scene_{number}_thumb.jpg",
        duration_seconds=1.0,
        width=160,
        height=90,
        file_size=2048,
        **fields,
    )


# The list -----------------------------------------------------------------------------


def test_changelist_shows_each_generation_with_its_facts(admin_client, owner):
    finished = run_pipeline(create_video(owner, title="Pasta night"))
    trashed = generation_delete(generation=GenerationFactory(title="Old draft"))
    failing = GenerationFactory(
        title="Half done",
        status=GenerationStatus.PARTIAL_SUCCESS,
        total_items=4,
        completed_items=3,
        failed_items=1,
        generation_time_seconds=12.34,
    )

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert set(listed(response)) == {finished.pk, trashed.pk, failing.pk}
    page = response.content.decode()
    assert '<span class="gv-badge gv-badge--completed">Completed</span>' in page
    assert '<span class="gv-badge gv-badge--trash">In trash</span>' in page
    assert "4/4" in page
    assert "3/4" in page
    assert "1 failed" in page
    assert "12.3 s" in page
    # The first completed item's thumbnail, through a short-lived URL.
    thumbnails = re.findall(r'<img class="gv-thumb" src="([^"]+)"', page)
    assert len(thumbnails) == 1
    assert "_thumb.jpg" in thumbnails[0] or "/storage/" in thumbnails[0]
    assert f"?owner__id__exact={owner.pk}" in page
    assert reverse("admin:generations_generation_dashboard") in page


def test_changelist_has_no_add_button_and_no_django_delete(admin_client):
    generation = GenerationFactory()

    page = admin_client.get(CHANGELIST).content.decode()

    assert reverse("admin:generations_generation_add") not in page
    assert "delete_selected" not in page
    assert admin_client.get(reverse("admin:generations_generation_add")).status_code == 403
    delete_url = reverse("admin:generations_generation_delete", args=[generation.pk])
    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert Generation.objects.filter(pk=generation.pk).exists()


@pytest.fixture
def assorted(owner, other_user):
    now = timezone.now()
    rows = {
        "pending": GenerationFactory(owner=owner, status=GenerationStatus.PENDING),
        "speech": GenerationFactory(
            owner=other_user,
            kind=GenerationKind.SPEECH,
            status=GenerationStatus.COMPLETED,
            provider_request_id="req-42",
        ),
        "failed": GenerationFactory(
            owner=owner,
            status=GenerationStatus.FAILED,
            total_items=2,
            failed_items=2,
            prompt="A lighthouse in a storm",
        ),
        "other_provider": GenerationFactory(owner=other_user, provider="acme"),
        "trashed": GenerationFactory(owner=owner, deleted_at=now),
    }
    old = now - timedelta(days=400)
    Generation.objects.filter(pk=rows["failed"].pk).update(created_at=old)
    return rows


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "failed"}, ["failed"]),
        ({"status__exact": "pending"}, ["pending", "other_provider", "trashed"]),
        ({"kind__exact": "speech"}, ["speech"]),
        ({"provider": "local"}, ["pending", "speech", "failed", "trashed"]),
        ({"has_failures": "yes"}, ["failed"]),
        ({"has_failures": "no"}, ["pending", "speech", "other_provider", "trashed"]),
        ({"trash": "in"}, ["trashed"]),
        ({"trash": "out"}, ["pending", "speech", "failed", "other_provider"]),
        (
            {
                "created_at__gte": "2000-01-01 00:00:00+00:00",
                "created_at__lt": "2001-01-01 00:00:00+00:00",
            },
            [],
        ),
        (
            {"created_at__gte": "2000-01-01 00:00:00+00:00"},
            ["pending", "speech", "failed", "other_provider", "trashed"],
        ),
    ],
)
def test_changelist_filters(admin_client, assorted, query, expected):
    response = admin_client.get(CHANGELIST, query)

    assert response.status_code == 200
    assert sorted(map(str, listed(response))) == sorted(str(assorted[name].pk) for name in expected)


def test_owner_filter_uses_the_admin_autocomplete(admin_client, assorted, owner):
    response = admin_client.get(CHANGELIST, {"owner__id__exact": owner.pk})

    assert sorted(map(str, listed(response))) == sorted(
        str(assorted[name].pk) for name in ("pending", "failed", "trashed")
    )
    page = response.content.decode()
    select = re.search(r'<select name="owner__id__exact"[^>]*>', page).group(0)
    assert "admin-autocomplete" in select
    assert 'data-model-name="generation"' in select
    assert 'data-field-name="owner"' in select
    assert f'<option value="{owner.pk}" selected>owner</option>' in page
    assert "admin/js/autocomplete.js" in page
    # The autocomplete answers from the User admin's search fields.
    found = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "generations",
            "model_name": "generation",
            "field_name": "owner",
            "term": "own",
        },
    ).json()
    assert [row["text"] for row in found["results"]] == ["owner"]


def test_owner_filter_keeps_the_other_filters(admin_client, assorted):
    page = admin_client.get(CHANGELIST, {"status__exact": "failed"}).content.decode()

    form = page[page.index('class="gv-owner-filter"') :]
    assert '<input type="hidden" name="status__exact" value="failed">' in form[:2000]


def test_a_bad_owner_id_is_refused(admin_client, assorted):
    response = admin_client.get(CHANGELIST, {"owner__id__exact": "nobody"})

    assert response.status_code == 302
    assert "e=1" in response["Location"]


def test_date_hierarchy_links_come_from_the_first_and_last_dates(admin_client, assorted):
    page = admin_client.get(CHANGELIST).content.decode()
    this_year = timezone.localdate().year
    old_year = timezone.localdate(Generation.objects.get(pk=assorted["failed"].pk).created_at).year

    for year in range(old_year, this_year + 1):
        assert f"?created_at__year={year}" in page

    months = admin_client.get(CHANGELIST, {"created_at__year": this_year})
    assert f"created_at__month={timezone.localdate().month}" in months.content.decode()
    assert "All dates" in months.content.decode()
    old = admin_client.get(CHANGELIST, {"created_at__year": old_year})
    assert listed(old) == [assorted["failed"].pk]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("__id__", ["speech"]),
        ("__variant__", ["failed"]),
        ("__item__", ["failed"]),
        ("lighthouse", ["failed"]),
        ("LIGHTHOUSE IN", ["failed"]),
        ("other", ["speech", "other_provider"]),
        ("req-42", ["speech"]),
        ("Spring campaign", ["pending", "speech", "failed", "other_provider", "trashed"]),
        # Too short for the trigram indexes: titles and prompts are not read.
        ("li", []),
    ],
)
def test_changelist_search(admin_client, assorted, term, expected):
    item = ItemFactory(variant=VariantFactory(generation=assorted["failed"]))
    term = {
        "__id__": str(assorted["speech"].pk),
        "__variant__": str(item.variant_id),
        "__item__": str(item.pk).upper(),
    }.get(term, term)

    response = admin_client.get(CHANGELIST, {"q": term})

    assert response.status_code == 200
    assert sorted(map(str, listed(response))) == sorted(str(assorted[name].pk) for name in expected)


@pytest.mark.parametrize(("per_page", "rows"), [(10, 12), (100, 120)])
def test_changelist_queries_for_staff_add_only_their_permissions(
    support, django_assert_num_queries, monkeypatch, per_page, rows
):
    GenerationFactory.create_batch(rows)
    monkeypatch.setattr(GenerationAdmin, "list_per_page", per_page)
    # As for a superuser, plus the staff member's user and group permissions.
    expected = 8 if connection.vendor == "postgresql" else 7

    with django_assert_num_queries(expected):
        response = support.get(CHANGELIST)

    assert len(response.context["cl"].result_list) == per_page


@pytest.mark.parametrize(("per_page", "rows"), [(10, 12), (100, 120)])
def test_changelist_queries_do_not_grow_with_the_page(
    admin_client, django_assert_num_queries, monkeypatch, per_page, rows
):
    owners = [UserFactory() for _ in range(3)]
    generations = GenerationFactory.create_batch(rows, owner=factory.Iterator(owners))
    for generation in generations[::3]:
        completed_item(generation)
    monkeypatch.setattr(GenerationAdmin, "list_per_page", per_page)
    # session, user, table estimate (PostgreSQL), capped count, page, date bounds
    expected = 6 if connection.vendor == "postgresql" else 5

    with django_assert_num_queries(expected):
        response = admin_client.get(CHANGELIST)

    assert len(response.context["cl"].result_list) == per_page
    page = response.content.decode()
    with_image = page.count('<img class="gv-thumb"')
    assert 0 < with_image < per_page
    assert with_image + page.count('class="gv-thumb gv-thumb--empty"') == per_page


def test_changelist_filtered_and_searched_queries_stay_bounded(
    admin_client, django_assert_max_num_queries, owner
):
    GenerationFactory.create_batch(30, owner=owner, status=GenerationStatus.FAILED)

    with django_assert_max_num_queries(7):
        response = admin_client.get(
            CHANGELIST,
            {"status__exact": "failed", "owner__id__exact": owner.pk, "q": "owner"},
        )

    assert len(response.context["cl"].result_list) == 30


# Counting without COUNT(*) over the table


def test_unfiltered_large_tables_show_the_planner_estimate(admin_client, monkeypatch):
    GenerationFactory.create_batch(3)
    monkeypatch.setattr("generations.admin.lists.table_row_estimate", lambda queryset: 2_000_000)

    response = admin_client.get(CHANGELIST)

    assert response.context["cl"].result_count == 2_000_000
    assert "about 2,000,000 generations" in response.content.decode()


def test_filtered_lists_count_up_to_the_cap(admin_client, settings):
    settings.API_COUNT_CAP = 5
    GenerationFactory.create_batch(8, status=GenerationStatus.FAILED)

    response = admin_client.get(CHANGELIST, {"status__exact": "failed"})

    assert response.context["cl"].result_count == 6
    assert "more than 5 generations" in response.content.decode()


def test_paginator_counts_small_tables_exactly():
    GenerationFactory.create_batch(4)

    paginator = EstimatedCountPaginator(Generation.objects.order_by("-created_at"), 2)

    assert paginator.count == 4
    assert not paginator.count_is_estimate
    assert not paginator.count_is_capped


def test_table_estimate_reads_pg_class_after_analyze():
    require_postgresql("the estimate reads pg_class")
    GenerationFactory.create_batch(7)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE generations_generation")

    assert table_row_estimate(Generation.objects.all()) == 7


# The generation page ------------------------------------------------------------------


def test_change_page_is_read_only_with_variants_items_metadata_and_lineage(
    admin_client, owner, django_assert_max_num_queries
):
    parent = run_pipeline(create_video(owner, title="First cut", fail_items=["bold:2"]))
    child = GenerationFactory(owner=owner, parent=parent, title="Second cut")

    with django_assert_max_num_queries(9):
        response = admin_client.get(change_url(parent))

    assert response.status_code == 200
    assert response.context["adminform"].form.fields == {}
    page = response.content.decode()
    assert 'name="_save"' not in page
    assert "First cut" in page
    # Variants inline with their counters and status.
    assert "soft" in page
    assert "bold" in page
    assert "2/2" in page
    assert "1/2" in page
    assert '<span class="gv-badge gv-badge--partial_success">Partial success</span>' in page
    # Items: players that load nothing until played, and the failed item's error.
    assert page.count('<video class="gv-player" controls preload="none"') == 3
    assert "provider_rejected" in page or "provider_error" in page or "internal" in page
    # Metadata and input as formatted JSON.
    assert '<pre class="gv-json">' in page
    assert "&quot;seed&quot;: " in page
    # Lineage: its regeneration links here.
    assert change_url(child) in page
    child_page = admin_client.get(change_url(child)).content.decode()
    assert change_url(parent) in child_page
    # The items and regenerations link to their lists.
    assert f"?generation__id__exact={parent.pk}" in page
    items = admin_client.get(ITEMS, {"generation__id__exact": parent.pk})
    assert len(listed(items)) == 4


def test_many_regenerations_link_to_the_filtered_list(admin_client, monkeypatch):
    monkeypatch.setattr("generations.admin.generation.REGENERATION_LIMIT", 1)
    parent = GenerationFactory()
    children = GenerationFactory.create_batch(2, parent=parent)
    GenerationFactory()

    page = admin_client.get(change_url(parent)).content.decode()

    assert f"?parent__id__exact={parent.pk}" in page
    response = admin_client.get(CHANGELIST, {"parent__id__exact": parent.pk})
    assert sorted(map(str, listed(response))) == sorted(str(child.pk) for child in children)


def test_change_page_refuses_a_post(admin_client):
    generation = GenerationFactory(title="Untouchable")

    response = admin_client.post(change_url(generation), {"title": "Changed"})

    assert response.status_code == 403
    generation.refresh_from_db()
    assert generation.title == "Untouchable"


@pytest.mark.parametrize(
    ("kind", "markup"),
    [
        (GenerationKind.SPEECH, '<audio class="gv-audio" controls preload="none"'),
        (GenerationKind.IMAGE, '<img class="gv-player" src="'),
        (GenerationKind.VIDEO_AD, '<video class="gv-player" controls preload="none"'),
    ],
)
def test_change_page_plays_each_kind(admin_client, kind, markup):
    item = completed_item(GenerationFactory(kind=kind))
    GenerationMetadataFactory(generation=item.generation, analysis={"source": {"frames": 3}})

    page = admin_client.get(change_url(item.generation)).content.decode()

    assert markup in page
    assert "&quot;frames&quot;: 3" in page


def test_change_page_shows_errors_and_trash_state(admin_client):
    generation = GenerationFactory(
        status=GenerationStatus.FAILED,
        error_code="provider_rejected",
        error_message="The provider refused the prompt.",
        deleted_at=timezone.now(),
    )

    page = admin_client.get(change_url(generation)).content.decode()

    assert "provider_rejected" in page
    assert "The provider refused the prompt." in page
    assert "purged after" in page


def test_change_page_of_a_missing_generation_redirects(admin_client):
    response = admin_client.get(reverse("admin:generations_generation_change", args=["not-a-uuid"]))

    assert response.status_code == 302


# Actions ------------------------------------------------------------------------------


def test_cancel_cancels_reports_refusals_and_logs(support, staff_user, owner):
    pending = create_video(owner)
    running = processing_video(owner)
    finished = GenerationFactory(status=GenerationStatus.COMPLETED)

    response = act(support, "cancel", [pending, running, finished])

    assert messages_of(response) == [
        "Cancelled 2 generations; 1 could not be cancelled: This generation is already "
        "completed; only pending or processing generations can be cancelled."
    ]
    assert set(
        Generation.objects.filter(pk__in=[pending.pk, running.pk]).values_list("status", flat=True)
    ) == {GenerationStatus.CANCELLED}
    assert log_messages(staff_user) == {str(pending.pk): "Cancelled", str(running.pk): "Cancelled"}


def test_cancel_groups_distinct_refusals(support, owner):
    finished = GenerationFactory(status=GenerationStatus.COMPLETED)
    failed = GenerationFactory.create_batch(2, status=GenerationStatus.FAILED)

    response = act(support, "cancel", [finished, *failed])

    [message] = messages_of(response)
    assert message.startswith("Cancelled 0 generations; 3 could not be cancelled: 2 of them: ")
    assert "1 of them: This generation is already completed" in message


def test_retry_requeues_failed_items(support, staff_user, owner, sent):
    partial = run_pipeline(create_video(owner, fail_items=["soft:2"]))
    completed = run_pipeline(create_video(owner))

    response = act(support, "retry_failed", [partial, completed])

    assert messages_of(response) == [
        "Retried 1 generation (1 item queued); 1 could not be retried: A completed generation "
        "has nothing to retry."
    ]
    assert item_of(partial, "soft", 2).status == ItemStatus.QUEUED
    assert Generation.objects.get(pk=partial.pk).status == GenerationStatus.PROCESSING
    assert log_messages(staff_user) == {str(partial.pk): "Retried 1 item"}


def test_regenerate_creates_a_child_for_the_owner(support, staff_user, owner):
    original = run_pipeline(create_video(owner, title="Keep the seed"))
    trashed = generation_delete(generation=GenerationFactory())

    response = act(support, "regenerate", [original, trashed])

    [message] = messages_of(response)
    assert message == (
        "Regenerated 1 generation; 1 could not be regenerated: This generation is in the "
        "trash; restore it first."
    )
    child = Generation.objects.get(parent=original)
    assert child.owner == owner
    assert child.input["seed"] == original.input["seed"]
    assert child.status == GenerationStatus.PENDING
    assert log_messages(staff_user) == {str(original.pk): f"Regenerated as {child.pk}"}
    assert log_messages(staff_user, ADDITION) == {str(child.pk): f"Regenerated from {original.pk}"}
    assert not Generation.objects.filter(parent=trashed).exists()


def test_regenerate_reports_the_owners_limit(support, owner, settings):
    settings.GENVAULT_MAX_ACTIVE_GENERATIONS = 1
    original = run_pipeline(create_video(owner))
    create_video(owner)  # now the owner has one in flight

    response = act(support, "regenerate", [original])

    [message] = messages_of(response)
    assert message.startswith("Regenerated 0 generations; 1 could not be regenerated: You ")
    assert not Generation.objects.filter(parent=original).exists()


def test_soft_delete_moves_to_trash_and_cancels_running_ones(support, staff_user, owner):
    running = processing_video(owner)
    already = generation_delete(generation=GenerationFactory())

    response = act(support, "soft_delete", [running, already])

    assert messages_of(response) == [
        "Moved 1 generation to the trash; 1 could not be moved to the trash: This "
        "generation is already in the trash."
    ]
    running.refresh_from_db()
    assert running.deleted_at is not None
    assert running.status == GenerationStatus.CANCELLED
    assert Generation.objects.filter(pk=already.pk).exists()
    assert log_messages(staff_user) == {str(running.pk): "Moved to the trash"}


def test_restore_takes_out_of_the_trash(support, staff_user, settings):
    trashed = generation_delete(generation=GenerationFactory())
    expired = GenerationFactory(deleted_at=timezone.now() - timedelta(days=400))
    kept = GenerationFactory()

    response = act(support, "restore", [trashed, expired, kept])

    [message] = messages_of(response)
    assert message.startswith("Restored 1 generation from the trash; 2 could not be restored: ")
    assert "This generation is not in the trash." in message
    assert "passed its retention period" in message
    assert Generation.objects.get(pk=trashed.pk).deleted_at is None
    assert log_messages(staff_user) == {str(trashed.pk): "Restored from the trash"}


def test_purge_asks_for_confirmation_first(support, owner):
    trashed = generation_delete(generation=run_pipeline(create_video(owner, title="Bin me")))
    kept = GenerationFactory(title="Keep me")

    response = act(support, "purge_now", [trashed, kept])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/generations/generation/purge_confirmation.html"
    page = response.content.decode()
    assert "Bin me" in page
    assert "4 items" in page
    assert "Skipped: not in the trash" in page
    assert "Keep me" in page
    assert '<input type="hidden" name="post" value="yes">' in page
    assert f'name="_selected_action" value="{trashed.pk}"' in page
    assert f'name="_selected_action" value="{kept.pk}"' not in page
    assert STYLESHEET in page
    # Nothing is gone yet.
    assert Generation.objects.filter(pk=trashed.pk).exists()
    assert list(object_keys(generation_prefix(trashed.pk)))


def test_purge_confirmed_removes_objects_and_rows_and_logs(support, staff_user, owner):
    trashed = generation_delete(generation=run_pipeline(create_video(owner, title="Bin me")))
    child = GenerationFactory(parent=trashed)
    kept = GenerationFactory()
    assert list(object_keys(generation_prefix(trashed.pk)))

    response = act(support, "purge_now", [trashed, kept], post="yes")

    assert messages_of(response) == [
        "Purged 1 generation; 1 could not be purged: Not in the trash; move it to the trash first."
    ]
    assert not Generation.objects.filter(pk=trashed.pk).exists()
    assert not Item.objects.filter(generation_id=trashed.pk).exists()
    assert not Variant.objects.filter(generation_id=trashed.pk).exists()
    assert list(object_keys(generation_prefix(trashed.pk))) == []
    assert Generation.objects.get(pk=child.pk).parent_id is None
    assert Generation.objects.filter(pk=kept.pk).exists()
    assert log_messages(staff_user, DELETION) == {str(trashed.pk): ""}
    assert LogEntry.objects.get(action_flag=DELETION).object_repr == "Bin me"


def test_purge_refuses_a_generation_still_writing(support, owner):
    generation = processing_video(owner)
    item_claim(item_id=item_of(generation, "soft", 1).pk, claim_token="worker-1")
    generation = generation_delete(generation=generation)

    response = act(support, "purge_now", [generation], post="yes")

    assert messages_of(response) == [
        "Purged 0 generations; 1 could not be purged: Some items are still stopping; try "
        "again in a moment."
    ]
    assert Generation.objects.filter(pk=generation.pk).exists()


def test_actions_refuse_too_large_a_selection(support, monkeypatch):
    monkeypatch.setattr(actions, "ACTION_LIMIT", 2)
    generations = GenerationFactory.create_batch(3)

    response = act(support, "cancel", generations)

    assert messages_of(response) == [
        "Select at most 2 generations at a time; narrow the list with the filters first."
    ]
    assert not Generation.objects.filter(status=GenerationStatus.CANCELLED).exists()


# Permissions --------------------------------------------------------------------------


def test_view_only_staff_see_pages_but_no_actions(viewer):
    generation = GenerationFactory(status=GenerationStatus.PENDING)

    changelist = viewer.get(CHANGELIST)
    assert changelist.status_code == 200
    assert 'name="action"' not in changelist.content.decode()
    assert 'class="action-select"' not in changelist.content.decode()

    page = viewer.get(change_url(generation))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


@pytest.mark.parametrize("action", ["cancel", "soft_delete", "purge_now"])
def test_view_only_staff_cannot_post_an_action(viewer, action):
    generation = GenerationFactory(status=GenerationStatus.PENDING, deleted_at=None)

    response = act(viewer, action, [generation], post="yes")

    assert response.status_code == 200
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PENDING
    assert generation.deleted_at is None
    assert not LogEntry.objects.exists()


def test_staff_without_delete_permission_cannot_trash_or_purge(client, staff_user):
    grant(staff_user, "view_generation", "change_generation")
    client.force_login(staff_user)
    generation = GenerationFactory()

    page = client.get(CHANGELIST).content.decode()

    assert 'value="cancel"' in page
    assert 'value="retry_failed"' in page
    assert 'value="regenerate"' in page
    assert 'value="soft_delete"' not in page
    assert 'value="restore"' not in page
    assert 'value="purge_now"' not in page
    act(client, "soft_delete", [generation])
    assert Generation.objects.get(pk=generation.pk).deleted_at is None


def test_support_staff_see_every_action(support):
    GenerationFactory()

    page = support.get(CHANGELIST).content.decode()

    for action in ("cancel", "retry_failed", "regenerate", "soft_delete", "restore", "purge_now"):
        assert f'value="{action}"' in page


def test_non_staff_are_sent_to_the_login(client, owner):
    client.force_login(owner)

    for url in (CHANGELIST, ITEMS, VARIANTS):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login/" in response["Location"]


# Variants and items ------------------------------------------------------------------


def test_item_list_shows_items_with_links_and_filters(admin_client):
    done = completed_item(GenerationFactory(title="Kitchen"))
    failed = ItemFactory(status=ItemStatus.FAILED, error_code="provider_error")

    response = admin_client.get(ITEMS)

    assert response.status_code == 200
    assert set(listed(response)) == {done.pk, failed.pk}
    page = response.content.decode()
    assert change_url(done.generation) in page
    assert change_url(done.variant) in page
    assert '<span class="gv-badge gv-badge--failed">Failed</span>' in page
    assert "160×90" in page  # noqa: RUF001 (the dimension sign)
    assert "2.0\xa0KB" in page
    retrying = ItemFactory(status=ItemStatus.QUEUED, error_code="provider_error", attempts=1)
    assert listed(admin_client.get(ITEMS, {"status__exact": "failed"})) == [failed.pk]
    # Failed with that code: an item queued again after that error is not a failure.
    assert listed(admin_client.get(ITEMS, {"error_code": "provider_error"})) == [failed.pk]
    assert retrying.pk in listed(admin_client.get(ITEMS, {"status__exact": "queued"}))


@pytest.mark.parametrize("which", ["item", "variant", "generation", "words"])
def test_item_search_is_by_id(admin_client, which):
    item = ItemFactory()
    ItemFactory()
    term = {
        "item": str(item.pk),
        "variant": str(item.variant_id),
        "generation": str(item.generation_id),
        "words": "steam rising",
    }[which]

    found = listed(admin_client.get(ITEMS, {"q": term}))

    assert found == ([] if which == "words" else [item.pk])


@pytest.mark.parametrize(("per_page", "rows"), [(10, 12), (100, 120)])
def test_item_list_queries_do_not_grow_with_the_page(
    admin_client, django_assert_num_queries, monkeypatch, per_page, rows
):
    generation = GenerationFactory()
    variant = VariantFactory(generation=generation)
    for number in range(1, rows + 1):
        completed_item(generation, number=number) if number % 2 else ItemFactory(
            variant=variant, number=number
        )
    monkeypatch.setattr(ItemAdmin, "list_per_page", per_page)
    # session, user, table estimate (PostgreSQL), capped count, page
    expected = 5 if connection.vendor == "postgresql" else 4

    with django_assert_num_queries(expected):
        response = admin_client.get(ITEMS)

    assert len(response.context["cl"].result_list) == per_page


def test_item_list_is_ordered_by_its_unique_index(admin_client):
    response = admin_client.get(ITEMS)

    sql = str(response.context["cl"].queryset.query)
    order = sql[sql.index("ORDER BY") :]
    assert order.startswith(
        'ORDER BY "generations_item"."variant_id" ASC, "generations_item"."number" ASC'
    )
    assert '"id"' not in order


def test_item_page_shows_its_player_read_only(admin_client):
    item = completed_item(provider_job_id="job-7")

    response = admin_client.get(change_url(item))

    assert response.status_code == 200
    assert response.context["adminform"].form.fields == {}
    page = response.content.decode()
    assert '<video class="gv-player" controls preload="none"' in page
    assert "job-7" in page
    assert admin_client.post(change_url(item), {}).status_code == 403


def attempt_log(item, *, worker="host-a:41"):
    """Three attempts at `item`: a timeout retried, a lost worker, then the one running."""
    started = timezone.now() - timedelta(minutes=5)
    AttemptFactory(
        item=item,
        number=1,
        started_at=started,
        ended_at=started + timedelta(seconds=12.4),
        outcome=AttemptOutcome.RETRYING,
        error_code="provider_timeout",
        error_message="The provider did not answer.",
        retryable=True,
        worker=worker,
    )
    AttemptFactory(
        item=item,
        number=2,
        reason=QueueReason.AUTOMATIC_RETRY,
        started_at=started + timedelta(minutes=1),
        ended_at=started + timedelta(minutes=4),
        outcome=AttemptOutcome.LOST,
        error_code="worker_lost",
        worker=worker,
    )
    AttemptFactory(
        item=item,
        number=3,
        reason=QueueReason.RECOVERY,
        started_at=started + timedelta(minutes=4),
        ended_at=None,
        outcome="",
        provider_job_id="job-3",
        worker=worker,
    )


def test_item_page_lists_its_attempts_read_only_first_attempt_first(admin_client):
    item = ItemFactory(status=ItemStatus.PROCESSING, attempts=3)
    attempt_log(item)

    response = admin_client.get(change_url(item))

    (inline,) = response.context["inline_admin_formsets"]
    assert [form.original.number for form in inline] == [1, 2, 3]
    assert inline.has_add_permission is False
    assert inline.has_change_permission is False
    assert inline.has_delete_permission is False
    # Only the hidden keys every inline row carries; nothing to edit.
    assert all(set(form.form.fields) <= {"id", "item"} for form in inline)
    page = response.content.decode()
    rows = re.findall(r'<tr class="form-row[^"]*"[^>]*>(.*?)</tr>', page, re.S)
    assert len(rows) == 3
    assert "First run" in rows[0]
    assert '<span class="gv-badge gv-badge--retrying">Failed, retried</span>' in rows[0]
    assert "<code>provider_timeout</code> The provider did not answer." in rows[0]
    assert '<span class="gv-sub">Retryable</span>' in rows[0]
    assert "12.4 s" in rows[0]
    assert "host-a:41" in rows[0]
    assert "Automatic retry" in rows[1]
    assert '<span class="gv-badge gv-badge--lost">Worker lost</span>' in rows[1]
    assert "3 min" in rows[1]
    assert "Recovered from a lost worker" in rows[2]
    assert '<span class="gv-badge gv-badge--processing">Running</span>' in rows[2]
    assert "job-3" in rows[2]
    assert 'name="attempt_log-MAX_NUM_FORMS" value="0"' in page  # no row can be added
    assert "_DELETE" not in page
    assert admin_client.post(change_url(item), {}).status_code == 403
    assert Attempt.objects.filter(item=item).count() == 3


def test_item_without_attempts_shows_an_empty_inline(admin_client):
    item = ItemFactory()

    response = admin_client.get(change_url(item))

    (inline,) = response.context["inline_admin_formsets"]
    assert list(inline) == []


def test_view_only_staff_see_the_attempts(viewer):
    item = ItemFactory(status=ItemStatus.PROCESSING, attempts=3)
    attempt_log(item, worker="host-b:7")

    response = viewer.get(change_url(item))

    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    assert len(list(inline)) == 3
    assert "host-b:7" in response.content.decode()


def test_variant_list_and_page(admin_client):
    item = completed_item()
    variant = item.variant
    Variant.objects.filter(pk=variant.pk).update(
        status=GenerationStatus.COMPLETED, total_items=1, completed_items=1
    )
    other = VariantFactory(status=GenerationStatus.FAILED, error_code="internal")

    response = admin_client.get(VARIANTS)
    assert set(listed(response)) == {variant.pk, other.pk}
    assert listed(admin_client.get(VARIANTS, {"status__exact": "failed"})) == [other.pk]
    assert listed(admin_client.get(VARIANTS, {"error_code": "internal"})) == [other.pk]
    assert listed(admin_client.get(VARIANTS, {"q": str(variant.generation_id)})) == [variant.pk]
    assert listed(admin_client.get(VARIANTS, {"q": other.label})) == [other.pk]

    page = admin_client.get(change_url(variant)).content.decode()
    assert "1/1" in page
    assert '<video class="gv-player" controls preload="none"' in page
    assert change_url(variant.generation) in page
    assert admin_client.get(reverse("admin:generations_variant_add")).status_code == 403
    assert admin_client.get(reverse("admin:generations_item_add")).status_code == 403


def test_view_only_staff_see_variant_and_item_pages(viewer):
    item = completed_item()

    assert viewer.get(ITEMS).status_code == 200
    assert viewer.get(VARIANTS).status_code == 200
    assert viewer.get(change_url(item)).status_code == 200
    assert viewer.get(change_url(item.variant)).status_code == 200


def test_cost_columns_show_estimate_and_actual(admin_client):
    GenerationFactory(cost_estimate=Decimal("1.2500"), actual_cost=Decimal("0.7500"))

    page = admin_client.get(CHANGELIST).content.decode()

    assert "1.2500" in page
    assert "0.7500" in page


# The package ------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Generation, Variant, Item])
def test_every_large_table_admin_uses_the_large_table_mixin(model):
    model_admin = admin.site.get_model_admin(model)

    assert isinstance(model_admin, LargeTableAdminMixin)
    assert model_admin.show_full_result_count is False
    assert model_admin.show_facets is admin.ShowFacets.NEVER
    assert model_admin.paginator is EstimatedCountPaginator
    assert model_admin.list_per_page == 50


@pytest.mark.parametrize("model_name", ["generation", "variant", "item"])
@pytest.mark.parametrize("object_id", ["not-a-uuid", str(uuid.UUID(int=7))])
def test_change_pages_of_malformed_or_missing_ids_redirect(admin_client, model_name, object_id):
    url = reverse(f"admin:generations_{model_name}_change", args=[object_id])

    response = admin_client.get(url)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


@pytest.mark.parametrize("attempts", [1, 5])
def test_item_page_loads_the_item_with_its_generation_and_variant(
    admin_client, django_assert_num_queries, attempts
):
    item = completed_item(attempts=attempts)
    for number in range(1, attempts + 1):
        AttemptFactory(item=item, number=number)
    admin_client.get(change_url(item))  # warms the caches (content types)

    # session, user, the item with its generation and variant, its attempts
    with django_assert_num_queries(4):
        page = admin_client.get(change_url(item))

    assert page.status_code == 200
    assert change_url(item.variant) in page.content.decode()
    assert len(list(page.context["inline_admin_formsets"][0])) == attempts


def test_admin_pages_link_the_admin_stylesheet(admin_client):
    item = completed_item()
    objects = [item, item.variant, item.generation]
    dashboard = reverse("admin:generations_generation_dashboard")

    for url in [CHANGELIST, ITEMS, VARIANTS, dashboard, *(change_url(obj) for obj in objects)]:
        assert STYLESHEET in admin_client.get(url).content.decode(), url
    assert finders.find("css/admin.css") is not None


def test_each_kind_has_a_player():
    assert {spec.player for spec in KINDS.values()} <= set(PLAYERS)


def test_the_admin_does_not_import_the_history_app():
    package = Path(generations.admin.__file__).parent

    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text())
        imported = [
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        ]
        imported += [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        ]
        assert not [name for name in imported if name.split(".")[0] == "history"], module.name
