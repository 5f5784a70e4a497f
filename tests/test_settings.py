"""The settings module as a deployment sees it, in a fresh interpreter each time."""

import subprocess
from pathlib import Path

from tests.helpers import SERVICE_VARIABLES, environ_without, manage, run_python

# Also dropped: the test run's DJANGO_DEBUG=1 and any secret key, so that each test sees
# the settings that a deployment without them would.
DEPLOYMENT_VARIABLES = (*SERVICE_VARIABLES, "DJANGO_DEBUG", "DJANGO_SECRET_KEY")


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = environ_without(
        DEPLOYMENT_VARIABLES,
        GENVAULT_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
        **env,
    )
    return run_python("-c", code, env=clean, timeout=60)


def test_embedded_defaults_need_no_services(tmp_path):
    result = _run(
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print(s.DATABASES['default']['NAME']);"
        "print(s.STORAGES['default']['BACKEND']);"
        "print(s.CELERY_BROKER_URL)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    engine, name, storage, broker = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert name.startswith(str(tmp_path))
    assert storage == "django.core.files.storage.FileSystemStorage"
    assert broker == "filesystem://"


def test_service_variables_switch_backends(tmp_path):
    result = _run(
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print(s.STORAGES['default']['BACKEND']);"
        "print(s.STORAGES['default']['OPTIONS']['endpoint_url']);"
        "print(s.CELERY_BROKER_URL)",
        tmp_path,
        DATABASE_URL="postgres://u@db.internal:5432/genvault",
        CELERY_BROKER_URL="redis://cache.internal:6379/0",
        AWS_STORAGE_BUCKET_NAME="media",
        AWS_S3_ENDPOINT_URL="http://minio.internal:9000",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "storages.backends.s3.S3Storage",
        "http://minio.internal:9000",
        "redis://cache.internal:6379/0",
    ]


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _run(
        "from django.conf import settings; settings.SECRET_KEY", tmp_path, DJANGO_DEBUG="0"
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_a_typo_in_a_variable_fails_at_start(tmp_path):
    result = _run("from django.conf import settings; settings.DEBUG", tmp_path, DJANGO_DEBUG="ture")
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


def test_deploy_check_is_clean_in_production(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=environ_without(
            DEPLOYMENT_VARIABLES,
            GENVAULT_VAR_DIR=str(tmp_path),
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY="k7#Qp2!vZ9@xL4$mN8^rT1&wY6*bC3(eF5)hJ0_gD-sA+uI=oP",
            DJANGO_ALLOWED_HOSTS="genvault.example.com",
        ),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
