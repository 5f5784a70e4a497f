"""The lists of a user's generations: the history (with its live cards), the trash and
the library. Rows come from `generations.selectors`, filters from the API's
GenerationFilter, and pages from the capped-count paginator: no list counts past
API_COUNT_CAP rows."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe
from django_htmx.middleware import HtmxDetails

from generations import selectors
from generations.models import Generation
from generations.states import LIVE_GENERATION_STATUSES, can_retry
from history.filters import GenerationFilter
from history.forms import HistoryFilterForm, LibraryFilterForm, ListFilterForm
from history.pagination import CappedCountPaginator
from history.views.access import page_user
from storage.services import object_url

HISTORY_PAGE_SIZE = 20
LIBRARY_PAGE_SIZE = 24  # fills rows of 2, 3, 4 and 6 tiles
TRASH_PAGE_SIZE = 50


@dataclass(frozen=True)
class Card:
    """A generation as a card shows it: the row, a short-lived thumbnail URL and which
    actions its status allows."""

    generation: Generation
    thumbnail_url: str

    @property
    def running(self) -> bool:
        return self.generation.status in LIVE_GENERATION_STATUSES

    @property
    def can_retry(self) -> bool:
        return can_retry(self.generation.status)

    @classmethod
    def of(cls, generation: Generation) -> "Card":
        """`generation` must carry the selectors' `thumbnail_key` annotation."""
        key: str | None = getattr(generation, "thumbnail_key", None)
        return cls(generation=generation, thumbnail_url=object_url(key) if key else "")


@dataclass(frozen=True)
class TrashItem:
    generation: Generation
    purge_at: datetime


@dataclass(frozen=True)
class Listing:
    """One page of a filtered list."""

    page: Page[Generation]
    capped: bool
    """True when there are more than API_COUNT_CAP rows: the page count is a floor."""

    @property
    def last_page_label(self) -> str:
        """The page count as shown: 12, or 501+ when capped (at least that many)."""
        pages = self.page.paginator.num_pages
        return f"{pages}+" if self.capped else str(pages)


def _listing(request: HttpRequest, generations: QuerySet[Generation], per_page: int) -> Listing:
    paginator = CappedCountPaginator(generations, per_page)
    page = paginator.get_page(request.GET.get("page"))
    return Listing(page=page, capped=paginator.count > settings.API_COUNT_CAP)


def _filtered(form: ListFilterForm, generations: QuerySet[Generation]) -> QuerySet[Generation]:
    form.is_valid()  # the valid filters apply; the others show their errors
    filtered: QuerySet[Generation] = GenerationFilter(
        data=form.filter_data(), queryset=generations
    ).qs
    return filtered


def _cards(generations: Iterable[Generation]) -> list[Card]:
    return [Card.of(generation) for generation in generations]


@login_required
@require_safe
def history_list(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET)
    generations = _filtered(form, selectors.generation_list(page_user(request)))
    listing = _listing(request, generations, HISTORY_PAGE_SIZE)
    context: dict[str, Any] = {
        "form": form,
        "listing": listing,
        "cards": _cards(listing.page),
        "next_url": request.get_full_path(),
    }
    return render(request, "history/history_list.html", context)


@login_required
@require_safe
def card(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    """One history card, for the page's polling: another user's id is a 404."""
    try:
        generation = selectors.generation_list(page_user(request)).get(id=generation_id)
    except Generation.DoesNotExist:
        raise Http404("No such generation.") from None
    context = {"card": Card.of(generation), "next_url": _polling_page(request)}
    return render(request, "history/_card.html", context)


def _polling_page(request: HttpRequest) -> str:
    """The page a polled card sits on (htmx sends it), so that its actions return there."""
    htmx = getattr(request, "htmx", None)
    if isinstance(htmx, HtmxDetails) and htmx.current_url_abs_path:
        return htmx.current_url_abs_path  # same origin only, or None
    return reverse("history:list")


@login_required
@require_safe
def trash(request: HttpRequest) -> HttpResponse:
    listing = _listing(
        request, selectors.generation_trash_list(page_user(request)), TRASH_PAGE_SIZE
    )
    retention = timedelta(days=settings.TRASH_RETENTION_DAYS)
    items = [
        TrashItem(generation=generation, purge_at=generation.deleted_at + retention)
        for generation in listing.page
        if generation.deleted_at is not None
    ]
    context = {
        "listing": listing,
        "items": items,
        "retention_days": settings.TRASH_RETENTION_DAYS,
        "next_url": request.get_full_path(),
    }
    return render(request, "history/trash.html", context)


@login_required
@require_safe
def library(request: HttpRequest) -> HttpResponse:
    form = LibraryFilterForm(request.GET)
    generations = _filtered(form, selectors.generation_library_list(page_user(request)))
    listing = _listing(request, generations, LIBRARY_PAGE_SIZE)
    context = {"form": form, "listing": listing, "cards": _cards(listing.page)}
    return render(request, "history/library.html", context)
