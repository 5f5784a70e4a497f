"""Admin actions on selected generations. Each calls the service that the API and the pages
call, one generation at a time, logs every change in the admin log and reports what it
did with counts: "Cancelled 3 generations; 1 could not be cancelled: <reason>"."""

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import DELETION, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from generations import services
from generations.errors import ActionRefused, InputError
from generations.models import Generation
from generations.services import generations_purge
from storage.services import ObjectMissing, StorageUnavailable

if TYPE_CHECKING:
    GenerationModelAdmin = admin.ModelAdmin[Generation]
else:
    GenerationModelAdmin = admin.ModelAdmin

# One action works through at most this many generations: "select all" on a filtered list
# of a million rows must not start a million service calls from one request.
ACTION_LIMIT = 500


def _generations(count: int) -> str:
    return f"{count} generation{'' if count == 1 else 's'}"


def report(
    modeladmin: GenerationModelAdmin,
    request: HttpRequest,
    *,
    done: str,
    count: int,
    refused: Counter[str],
    refused_as: str,
    detail: str = "",
) -> None:
    """One message: what was done (`done` has a {} for "3 generations"), then how many
    were refused and why (each distinct reason once, with its count when several
    generations share it)."""
    text = done.format(_generations(count)) + detail
    if not refused:
        modeladmin.message_user(request, f"{text}.", messages.SUCCESS)
        return
    reasons = " ".join(
        reason if len(refused) == 1 else f"{number} of them: {reason}"
        for reason, number in refused.most_common()
    )
    total = sum(refused.values())
    level = messages.WARNING if count else messages.ERROR
    modeladmin.message_user(request, f"{text}; {total} could not be {refused_as}: {reasons}", level)


def selected(
    modeladmin: GenerationModelAdmin, request: HttpRequest, queryset: QuerySet[Generation]
) -> list[Generation] | None:
    """The selected generations with their owners, or None (with a message) when more
    than ACTION_LIMIT are selected."""
    rows = list(queryset.select_related("owner")[: ACTION_LIMIT + 1])
    if len(rows) > ACTION_LIMIT:
        modeladmin.message_user(
            request,
            f"Select at most {ACTION_LIMIT} generations at a time; narrow the list with "
            "the filters first.",
            messages.ERROR,
        )
        return None
    return rows


def apply(
    modeladmin: GenerationModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Generation],
    act: Callable[[Generation], str],
    *,
    done: str,
    refused_as: str,
    errors: tuple[type[Exception], ...] = (ActionRefused,),
    detail: Callable[[], str] = str,
) -> None:
    """Run `act` (a service call returning the admin-log message) on each selected
    generation; a refusal from the service is counted with its reason."""
    rows = selected(modeladmin, request, queryset)
    if rows is None:
        return
    count = 0
    refused: Counter[str] = Counter()
    for generation in rows:
        try:
            log_message = act(generation)
        except errors as exc:
            refused[str(exc)] += 1
            continue
        modeladmin.log_change(request, generation, log_message)
        count += 1
    report(
        modeladmin,
        request,
        done=done,
        count=count,
        refused=refused,
        refused_as=refused_as,
        detail=detail(),
    )


@admin.action(description="Cancel selected generations", permissions=["change"])
def cancel(
    modeladmin: GenerationModelAdmin, request: HttpRequest, queryset: QuerySet[Generation]
) -> None:
    def act(generation: Generation) -> str:
        services.generation_cancel(generation=generation)
        return "Cancelled"

    apply(modeladmin, request, queryset, act, done="Cancelled {}", refused_as="cancelled")


@admin.action(description="Retry failed items of selected generations", permissions=["change"])
def retry_failed(
    modeladmin: GenerationModelAdmin, request: HttpRequest, queryset: QuerySet[Generation]
) -> None:
    queued = 0

    def act(generation: Generation) -> str:
        nonlocal queued
        items = services.generation_retry(generation=generation)
        queued += items
        return f"Retried {items} item{'' if items == 1 else 's'}"

    def detail() -> str:
        return f" ({queued} item{'' if queued == 1 else 's'} queued)" if queued else ""

    apply(
        modeladmin,
        request,
        queryset,
        act,
        done="Retried {}",
        refused_as="retried",
        detail=detail,
    )


@admin.action(description="Regenerate selected generations", permissions=["change"])
def regenerate(
    modeladmin: GenerationModelAdmin, request: HttpRequest, queryset: QuerySet[Generation]
) -> None:
    def act(generation: Generation) -> str:
        # Like the API, which does not find a generation in the trash.
        if generation.deleted_at is not None:
            raise ActionRefused("This generation is in the trash; restore it first.")
        # On behalf of the owner: the new generation is theirs and counts against their
        # limit of generations in flight.
        created = services.generation_regenerate(generation=generation, owner=generation.owner)
        modeladmin.log_addition(request, created, f"Regenerated from {generation.id}")
        return f"Regenerated as {created.id}"

    apply(
        modeladmin,
        request,
        queryset,
        act,
        done="Regenerated {}",
        refused_as="regenerated",
        errors=(ActionRefused, InputError, ObjectMissing, StorageUnavailable),
    )


@admin.action(description="Move selected generations to the trash", permissions=["trash"])
def soft_delete(
    modeladmin: GenerationModelAdmin, request: HttpRequest, queryset: QuerySet[Generation]
) -> None:
    def act(generation: Generation) -> str:
        services.generation_delete(generation=generation)
        return "Moved to the trash"

    apply(
        modeladmin,
        request,
        queryset,
        act,
        done="Moved {} to the trash",
        refused_as="moved to the trash",
    )


@admin.action(description="Restore selected generations from the trash", permissions=["trash"])
def restore(
    modeladmin: GenerationModelAdmin, request: HttpRequest, queryset: QuerySet[Generation]
) -> None:
    def act(generation: Generation) -> str:
        services.generation_restore(generation=generation)
        return "Restored from the trash"

    apply(
        modeladmin, request, queryset, act, done="Restored {} from the trash", refused_as="restored"
    )


@admin.action(description="Purge selected generations now (permanent)", permissions=["trash"])
def purge_now(
    modeladmin: GenerationModelAdmin, request: HttpRequest, queryset: QuerySet[Generation]
) -> TemplateResponse | None:
    """First a confirmation page listing what will be purged and what will be skipped;
    its POST (post=yes) purges the generations that are in the trash, whatever their
    retention period."""
    rows = selected(modeladmin, request, queryset)
    if rows is None:
        return None
    if request.POST.get("post") != "yes":
        return _purge_confirmation(modeladmin, request, rows)
    outcome = generations_purge(generation_ids=[generation.id for generation in rows])
    purged_ids = set(outcome.purged)
    purged = [generation for generation in rows if generation.id in purged_ids]
    if purged and request.user.pk is not None:
        # Logged after the fact, from the rows loaded before the purge: a generation
        # that the purge refused must not be logged as deleted.
        LogEntry.objects.log_actions(user_id=request.user.pk, queryset=purged, action_flag=DELETION)
    report(
        modeladmin,
        request,
        done="Purged {}",
        count=len(purged),
        refused=Counter(outcome.refused.values()),
        refused_as="purged",
    )
    return None


def _purge_confirmation(
    modeladmin: GenerationModelAdmin, request: HttpRequest, rows: list[Generation]
) -> TemplateResponse:
    opts = modeladmin.model._meta
    to_purge = [generation for generation in rows if generation.deleted_at is not None]
    context: dict[str, Any] = {
        **modeladmin.admin_site.each_context(request),
        "title": "Purge generations permanently?",
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "to_purge": to_purge,
        "items_to_purge": sum(generation.total_items for generation in to_purge),
        "skipped": [generation for generation in rows if generation.deleted_at is None],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(
        request, "admin/generations/generation/purge_confirmation.html", context
    )
