"""The tasks' own behaviour: a lost database connection is closed and the task runs again
with backoff, and recovery goes to a queue of its own."""

import pytest
from celery import current_app as app
from celery.exceptions import Retry
from django.conf import settings
from django.db import OperationalError

from generations import tasks


def _losing_the_database(*args, **kwargs):
    raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize(
    ("task", "service", "argument"),
    [
        (tasks.render_item, "item_render", "2f0f8a4e-34a0-4c7f-9d1e-5b0d3c9a1b11"),
        (tasks.run_generation, "generation_prepare", "2f0f8a4e-34a0-4c7f-9d1e-5b0d3c9a1b11"),
    ],
)
def test_a_lost_database_connection_is_closed_and_the_task_retried(
    task, service, argument, monkeypatch
):
    closed = []
    monkeypatch.setattr(tasks, service, _losing_the_database)
    monkeypatch.setattr(tasks.connections, "close_all", lambda: closed.append(True))

    with pytest.raises(Retry):
        task.apply(args=[argument], throw=True)

    assert closed


def test_recovery_is_routed_to_its_own_queue():
    route = app.amqp.router.route({}, "generations.tasks.recover_stuck_work")

    assert route["queue"].name == settings.RECOVERY_QUEUE
    assert app.amqp.router.route({}, "generations.tasks.render_item")["queue"].name == (
        settings.CELERY_TASK_DEFAULT_QUEUE
    )


def test_the_broker_keeps_a_waiting_message_longer_than_any_countdown(settings):
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if visibility is None:
        pytest.skip("the broker in use redelivers nothing on a timer")
    assert visibility > settings.ITEM_RETRY_MAX_DELAY_SECONDS + settings.CELERY_TASK_TIME_LIMIT
