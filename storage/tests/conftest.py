import pytest

from tests.tiers import TIER, services_required


def _require_s3(settings) -> None:
    if TIER.storage != "s3":
        if services_required():
            pytest.fail("The S3 server is required but not running")
        pytest.skip("S3 server not reachable: local storage only in this tier")
    assert "S3Storage" in settings.STORAGES["default"]["BACKEND"]


def _use_local_storage(settings, location) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location), "allow_overwrite": True},
        },
    }


@pytest.fixture
def s3_backend(settings):
    _require_s3(settings)


@pytest.fixture
def local_backend(settings, tmp_path):
    _use_local_storage(settings, tmp_path / "media")


@pytest.fixture(params=["s3", "local"])
def media_backend(request, settings, tmp_path):
    """Run a test once against the S3 server and once against local file storage."""
    if request.param == "s3":
        _require_s3(settings)
    else:
        _use_local_storage(settings, tmp_path / "media")
    return request.param
