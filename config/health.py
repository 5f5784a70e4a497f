"""/healthz: whether the database, the broker and the media storage answer, within
HEALTH_DEADLINE_SECONDS whatever they do: the checks run side by side, and one that has
not answered by then is reported down as timed out."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, TimeoutError, wait

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from config.celery import app as celery_app
from storage.services import storage_check

BROKER_TIMEOUT_SECONDS = 2
HEALTH_DEADLINE_SECONDS = 2.5


def _check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        # The check runs in a thread of its own: its connection goes with it.
        connection.close()


def _check_broker(url: str | None = None) -> None:
    with celery_app.connection_for_write(url) as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "broker": _check_broker,
    "storage": storage_check,
}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    results = run_checks(CHECKS, deadline=HEALTH_DEADLINE_SECONDS)
    down = [name for name, state in results.items() if state != "ok"]
    body = {"status": "down" if down else "ok", "checks": results, "down": down}
    return JsonResponse(body, status=503 if down else 200)


def run_checks(checks: dict[str, Callable[[], None]], *, deadline: float) -> dict[str, str]:
    """Each check's state ("ok" or why it is down), all of them within `deadline` seconds.
    A check still running then is left to finish on its own; its thread does not hold up
    the answer."""
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="healthz")
    futures = {name: pool.submit(check) for name, check in checks.items()}
    wait(futures.values(), timeout=deadline)
    pool.shutdown(wait=False)
    results: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=0)
        except TimeoutError:
            results[name] = f"down: no answer within {deadline:g} s"
        except Exception as exc:  # noqa: BLE001 (any failure means "down", reported by name)
            results[name] = f"down: {type(exc).__name__}: {exc}"[:300]
        else:
            results[name] = "ok"
    return results
