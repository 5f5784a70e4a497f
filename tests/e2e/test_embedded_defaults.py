"""A fresh checkout with no environment: SQLite, the file broker and local storage under
a var/ folder, a worker, and `manage.py generate --kind video_ad --wait`."""

import subprocess
import sys

from tests.helpers import ROOT, SERVICE_VARIABLES, environ_without, manage


def test_generate_with_wait_on_embedded_defaults(tmp_path):
    env = environ_without(
        SERVICE_VARIABLES, GENVAULT_VAR_DIR=str(tmp_path / "var"), DJANGO_SUPERUSER_PASSWORD="pw"
    )
    assert manage("migrate", "--noinput", env=env).returncode == 0
    assert manage("ensure_admin", env=env).returncode == 0
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--beat", "-c", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        result = manage("generate", "--kind", "video_ad", "--wait", env=env)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("/16 scenes") >= 2  # the bar was redrawn as items ended
    assert "100% 16/16 scenes · completed" in result.stdout
    assert "Completed in" in result.stdout
    assert (tmp_path / "var" / "genvault.sqlite3").exists()
    stored = list((tmp_path / "var" / "media" / "generations").glob("*/*/scene_*.mp4"))
    assert len(stored) == 16
