import os
from pathlib import Path

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("genvault")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _create_filesystem_broker_folders(sender: Celery, **kwargs: object) -> None:
    """kombu's filesystem transport expects its folders to exist. (Reads Django's settings:
    the app's own configuration is not readable while it is being configured.)"""
    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@task_prerun.connect
@task_postrun.connect
def _close_old_database_connections(**kwargs: object) -> None:
    """What Django does around each request: keep the connection for CONN_MAX_AGE seconds,
    and drop one that has failed."""
    from django.db import close_old_connections

    close_old_connections()
