"""The staff dashboard in the admin: generations in flight with live counters, stuck
items, failure codes of the last 24 hours and the depth of the task queue.

Every query is bounded by an index and a LIMIT (see the dashboard selectors in selectors.py), so
the page costs the same whatever the size of the tables; it refreshes its panels every
REFRESH_SECONDS with htmx.
"""

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from generations.admin.base import GenerationModelAdmin
from generations.admin.display import progress, seconds, status_badge
from generations.selectors import (
    attempt_failure_codes,
    capped_count,
    generation_in_flight_list,
    generation_in_flight_totals,
    generation_stuck_pending_list,
    item_stuck_list,
)

REFRESH_SECONDS = 5
IN_FLIGHT_LIMIT = 25
STUCK_LIMIT = 10
# Counts past this are shown as "1000+".
COUNT_CAP = 1000
FAILURE_WINDOW = timedelta(hours=24)
# kombu's Redis transport keeps a queue's messages in one list per priority step
# (priority_steps 0, 3, 6, 9), named "<queue>" and "<queue>\x06\x16<step>".
_REDIS_PRIORITY_SEPARATOR = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)
_REDIS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class QueueDepth:
    """Messages waiting in the task queue, or None with the reason it is unknown."""

    broker: str
    messages: int | None
    problem: str = ""


def queue_depth() -> QueueDepth:
    """How many task messages wait in CELERY_TASK_DEFAULT_QUEUE: LLEN on Redis, the
    message files on the filesystem broker; unknown (with why) for any other broker or
    when the broker does not answer. Messages a worker has taken are not counted."""
    url = str(settings.CELERY_BROKER_URL)
    queue = str(settings.CELERY_TASK_DEFAULT_QUEUE)
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        return _redis_depth(url, queue)
    if scheme == "filesystem":
        return _folder_depth(queue)
    return QueueDepth(
        scheme or "unknown", None, f"Queue depth is not available for the {scheme} broker."
    )


def _redis_depth(url: str, queue: str) -> QueueDepth:
    names = [
        queue,
        *(f"{queue}{_REDIS_PRIORITY_SEPARATOR}{step}" for step in _REDIS_PRIORITY_STEPS),
    ]
    client = redis.Redis.from_url(
        url, socket_connect_timeout=_REDIS_TIMEOUT_SECONDS, socket_timeout=_REDIS_TIMEOUT_SECONDS
    )
    try:
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
            lengths = pipe.execute()
    except redis.RedisError as exc:
        # The message names the host, never the URL (which may hold a password).
        return QueueDepth("redis", None, f"Redis did not answer: {exc}")
    finally:
        client.close()
    return QueueDepth("redis", sum(int(length) for length in lengths))


def _folder_depth(queue: str) -> QueueDepth:
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
    if not folder:
        return QueueDepth("filesystem", None, "No data_folder_in in the broker options.")
    # kombu names each message file "<time>_<uuid>.<queue>.msg".
    suffix = f"{queue}.msg"
    try:
        with os.scandir(folder) as entries:
            count = sum(1 for entry in entries if entry.name.partition(".")[2] == suffix)
    except FileNotFoundError:
        return QueueDepth(
            "filesystem", None, "The broker folder does not exist yet (no task sent so far)."
        )
    except OSError as exc:
        return QueueDepth("filesystem", None, f"Cannot read the broker folder: {exc.strerror}")
    return QueueDepth("filesystem", count)


def _listed_and_counted(queryset: Any, limit: int) -> tuple[list[Any], int]:
    """The first `limit` rows and how many there are (capped at COUNT_CAP + 1); the count
    costs a query only when the list is full."""
    rows = list(queryset[:limit])
    return rows, len(rows) if len(rows) < limit else capped_count(queryset, COUNT_CAP)


def dashboard_data(now: datetime) -> dict[str, Any]:
    """Everything the dashboard shows, in at most seven queries."""
    totals = generation_in_flight_totals()
    stuck_items, stuck_item_count = _listed_and_counted(item_stuck_list(now=now), STUCK_LIMIT)
    stuck_pending, stuck_pending_count = _listed_and_counted(
        generation_stuck_pending_list(now=now), STUCK_LIMIT
    )
    in_flight = [
        {
            "generation": generation,
            "status": status_badge(generation.status, generation.get_status_display()),
            "progress": progress(generation),
        }
        for generation in generation_in_flight_list(limit=IN_FLIGHT_LIMIT)
    ]
    ended = totals["completed"] + totals["failed"] + totals["cancelled"]
    return {
        "now": now,
        "refresh_seconds": REFRESH_SECONDS,
        "count_cap": COUNT_CAP,
        "totals": {
            **totals,
            "processing": totals["generations"] - totals["pending"],
            "waiting": totals["items"] - ended,
        },
        "in_flight": in_flight,
        "in_flight_limit": IN_FLIGHT_LIMIT,
        "stuck_items": stuck_items,
        "stuck_item_count": stuck_item_count,
        "stuck_pending": stuck_pending,
        "stuck_pending_count": stuck_pending_count,
        "lease_text": seconds(settings.ITEM_LEASE_SECONDS),
        "pending_text": seconds(settings.PENDING_REDISPATCH_SECONDS),
        "failure_codes": attempt_failure_codes(since=now - FAILURE_WINDOW),
        "queue": queue_depth(),
        "queue_name": settings.CELERY_TASK_DEFAULT_QUEUE,
    }


def dashboard_view(model_admin: GenerationModelAdmin, request: HttpRequest) -> HttpResponse:
    """The page for staff who may view generations (the admin site checks is_staff); an
    htmx request gets the panels alone."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    context = dashboard_data(timezone.now())
    if request.headers.get("HX-Request") == "true":
        return TemplateResponse(
            request, "admin/generations/generation/_dashboard_panels.html", context
        )
    opts = model_admin.opts
    context.update(
        model_admin.admin_site.each_context(request),
        title="Generations dashboard",
        subtitle=None,
        opts=opts,
        app_label=opts.app_label,
    )
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/generations/generation/dashboard.html", context)
