"""Admin actions on selected generations (GenerationActionsMixin). Each calls the service
that the API and the pages call, one generation at a time, logs every change in the admin
log and reports what it did with counts: "Cancelled 3 generations; 1 could not be
cancelled: <reason>"."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from generations import services
from generations.admin.base import AdminMixinBase, GenerationModelAdmin
from generations.errors import ActionRefused, InputError
from generations.models import Generation
from generations.purge import generations_purge
from storage.services import ObjectMissing, StorageUnavailable

# One action works through at most this many generations: "select all" on a filtered list
# of a million rows must not start a million service calls from one request.
ACTION_LIMIT = 500


# An action's work on one generation: a service call, returning the admin log message
# (None: the wording's own).
Act = Callable[[Generation], str | None]
Selection = QuerySet[Generation]


@dataclass(frozen=True)
class Wording:
    """How an action's report reads: `done` has a {} for "3 generations" ("Moved {} to the
    trash"), and "1 could not be <refused_as>: <reason>" follows. Each generation's admin
    log message is `done` without the count, unless the action gives its own."""

    done: str
    refused_as: str

    @property
    def logged(self) -> str:
        return self.done.replace(" {}", "")


CANCEL = Wording("Cancelled {}", "cancelled")
RETRY = Wording("Retried {}", "retried")
REGENERATE = Wording("Regenerated {}", "regenerated")
TRASH = Wording("Moved {} to the trash", "moved to the trash")
RESTORE = Wording("Restored {} from the trash", "restored")
PURGE = Wording("Purged {}", "purged")


def _generations(count: int) -> str:
    return f"{count} generation{'' if count == 1 else 's'}"


def report(
    modeladmin: GenerationModelAdmin,
    request: HttpRequest,
    wording: Wording,
    *,
    count: int,
    refused: Counter[str],
    detail: str = "",
) -> None:
    """One message: what was done, then how many were refused and why (each distinct
    reason once, with its count when several generations share it)."""
    text = wording.done.format(_generations(count)) + detail
    if not refused:
        modeladmin.message_user(request, f"{text}.", messages.SUCCESS)
        return
    reasons = " ".join(
        reason if len(refused) == 1 else f"{number} of them: {reason}"
        for reason, number in refused.most_common()
    )
    total = sum(refused.values())
    level = messages.WARNING if count else messages.ERROR
    text = f"{text}; {total} could not be {wording.refused_as}: {reasons}"
    modeladmin.message_user(request, text, level)


def selected(
    modeladmin: GenerationModelAdmin, request: HttpRequest, queryset: Selection
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


def calling(service: Callable[..., object], request: HttpRequest) -> Act:
    """The act that calls `service` with the generation on behalf of the staff member who
    asked (so the generation's log names them), logged in the wording's words."""

    def act(generation: Generation) -> None:
        service(generation=generation, by=staff_member(request))

    return act


def staff_member(request: HttpRequest) -> User:
    """The signed-in staff member (the admin lets no one else run an action)."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def apply(
    modeladmin: GenerationModelAdmin,
    request: HttpRequest,
    queryset: Selection,
    act: Act,
    wording: Wording,
    *,
    errors: tuple[type[Exception], ...] = (ActionRefused,),
    detail: Callable[[], str] = str,
) -> None:
    """Run `act` on each selected generation, log it and report; a refusal from the
    service is counted with its reason."""
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
        modeladmin.log_change(request, generation, log_message or wording.logged)
        count += 1
    report(modeladmin, request, wording, count=count, refused=refused, detail=detail())


class GenerationActionsMixin(AdminMixinBase):
    """The actions of the generation admin. Soft delete, restore and purge ask the
    "trash" permission (has_trash_permission)."""

    actions = ["cancel", "retry_failed", "regenerate", "soft_delete", "restore", "purge_now"]

    def has_trash_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("generations.delete_generation"))

    @admin.action(description="Cancel selected generations", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: Selection) -> None:
        apply(self, request, queryset, calling(services.generation_cancel, request), CANCEL)

    @admin.action(description="Retry failed items of selected generations", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: Selection) -> None:
        queued = 0

        def act(generation: Generation) -> str:
            nonlocal queued
            items = services.generation_retry(generation=generation, by=staff_member(request))
            queued += items
            return f"Retried {items} item{'' if items == 1 else 's'}"

        def detail() -> str:
            return f" ({queued} item{'' if queued == 1 else 's'} queued)" if queued else ""

        apply(self, request, queryset, act, RETRY, detail=detail)

    @admin.action(description="Regenerate selected generations", permissions=["change"])
    def regenerate(self, request: HttpRequest, queryset: Selection) -> None:
        def act(generation: Generation) -> str:
            # Like the API, which does not find a generation in the trash.
            if generation.deleted_at is not None:
                raise ActionRefused("This generation is in the trash; restore it first.")
            # On behalf of the owner: the new generation is theirs and counts against
            # their limit of generations in flight.
            owner = generation.owner
            created = services.generation_regenerate(
                generation=generation, owner=owner, by=staff_member(request)
            )
            self.log_addition(request, created, f"Regenerated from {generation.id}")
            return f"Regenerated as {created.id}"

        errors = (ActionRefused, InputError, ObjectMissing, StorageUnavailable)
        apply(self, request, queryset, act, REGENERATE, errors=errors)

    @admin.action(description="Move selected generations to the trash", permissions=["trash"])
    def soft_delete(self, request: HttpRequest, queryset: Selection) -> None:
        apply(self, request, queryset, calling(services.generation_delete, request), TRASH)

    @admin.action(description="Restore selected generations from the trash", permissions=["trash"])
    def restore(self, request: HttpRequest, queryset: Selection) -> None:
        apply(self, request, queryset, calling(services.generation_restore, request), RESTORE)

    @admin.action(description="Purge selected generations now (permanent)", permissions=["trash"])
    def purge_now(self, request: HttpRequest, queryset: Selection) -> TemplateResponse | None:
        """First a confirmation page listing what will be purged and what will be skipped;
        its POST (post=yes) purges the generations that are in the trash, whatever their
        retention period."""
        rows = selected(self, request, queryset)
        if rows is None:
            return None
        if request.POST.get("post") != "yes":
            return _purge_confirmation(self, request, rows)
        outcome = generations_purge(generation_ids=[generation.id for generation in rows])
        purged_ids = set(outcome.purged)
        purged = [generation for generation in rows if generation.id in purged_ids]
        if purged and request.user.pk is not None:
            # Logged after the fact, from the rows loaded before the purge: a generation
            # that the purge refused must not be logged as deleted.
            LogEntry.objects.log_actions(
                user_id=request.user.pk, queryset=purged, action_flag=DELETION
            )
        refused = Counter(outcome.refused.values())
        report(self, request, PURGE, count=len(purged), refused=refused)
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
