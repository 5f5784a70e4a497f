import io
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.storage import storages
from django.test import Client

from storage import services
from storage.services import ObjectMissing

KEY = "generations/6f1c1e52-8a51-4a4f-9b5e-1d2f3a4b5c6d/soft/scene_1.mp4"


def _fetch(url, client, headers=None):
    """GET a URL handed out by object_url: over HTTP for S3, through Django for local."""
    if url.startswith("http"):
        request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
    extra = {
        f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()
    }
    response = client.get(url, **extra)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body


def test_write_read_and_delete(media_backend):
    size = services.object_save(key=KEY, content=io.BytesIO(b"first take"))

    assert size == len(b"first take")
    assert services.object_exists(KEY)
    assert services.object_size(KEY) == size
    with services.object_open(KEY) as handle:
        assert handle.read() == b"first take"

    services.object_delete(KEY)
    assert not services.object_exists(KEY)
    services.object_delete(KEY)  # deleting twice is harmless


def test_retried_write_overwrites_its_own_key(media_backend):
    services.object_save(key=KEY, content=io.BytesIO(b"attempt one, longer body"))
    services.object_save(key=KEY, content=io.BytesIO(b"attempt two"))

    assert list(services.object_keys("generations/")) == [KEY]
    with services.object_open(KEY) as handle:
        assert handle.read() == b"attempt two"


def test_save_from_a_path(media_backend, tmp_path):
    source = tmp_path / "item.mp4"
    source.write_bytes(b"\x00" * 1000)

    assert services.object_save(key=KEY, content=source) == 1000


def test_listing_and_prefix_delete(media_backend):
    keys = [
        "generations/a/soft/scene_1.mp4",
        "generations/a/soft/scene_1_thumb.jpg",
        "generations/a/ultra/scene_1.mp4",
        "generations/b/soft/scene_1.mp4",
    ]
    for key in keys:
        services.object_save(key=key, content=io.BytesIO(b"x"))

    assert sorted(services.object_keys("generations/a/")) == keys[:3]
    assert services.prefix_delete("generations/a/") == 3
    assert list(services.object_keys("generations/")) == keys[3:]
    assert list(services.object_keys("generations/missing/")) == []


def test_open_of_a_missing_object(media_backend):
    with pytest.raises(ObjectMissing):
        services.object_open("generations/none/soft/scene_9.mp4")


def test_url_serves_the_object(media_backend, client):
    services.object_save(key=KEY, content=io.BytesIO(b"movie bytes"))

    status, body = _fetch(services.object_url(KEY), client)

    assert (status, body) == (200, b"movie bytes")


def test_url_serves_byte_ranges(media_backend, client):
    services.object_save(key=KEY, content=io.BytesIO(b"0123456789"))

    status, body = _fetch(services.object_url(KEY), client, {"Range": "bytes=2-5"})

    assert (status, body) == (206, b"2345")


def test_local_url_stops_working_after_it_expires(local_backend, client):
    services.object_save(key=KEY, content=io.BytesIO(b"movie bytes"))
    url = services.object_url(KEY, expires_in=1)

    time.sleep(2.1)
    status, _ = _fetch(url, client)

    assert status == 404


def test_s3_url_is_presigned_with_the_requested_expiry(s3_backend):
    services.object_save(key=KEY, content=io.BytesIO(b"movie bytes"))

    query = parse_qs(urlsplit(services.object_url(KEY, expires_in=60)).query)

    # The S3 server enforces the expiry; the test S3 server does not, so check what we ask.
    assert query["X-Amz-Expires"] == ["60"]
    assert "X-Amz-Signature" in query


def test_download_url_names_the_file(media_backend, client):
    services.object_save(key=KEY, content=io.BytesIO(b"movie bytes"))
    url = services.object_url(KEY, download_name="soft-item-1.mp4")

    if url.startswith("http"):
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            disposition = response.headers["Content-Disposition"]
    else:
        disposition = client.get(url)["Content-Disposition"]

    assert "soft-item-1.mp4" in disposition
    assert "attachment" in disposition


def test_s3_objects_are_private(s3_backend):
    services.object_save(key=KEY, content=io.BytesIO(b"secret"))
    storage = storages["default"]
    unsigned = f"{storage.endpoint_url}/{storage.bucket_name}/{KEY}"

    status, _ = _fetch(unsigned, Client())

    assert status == 403


def test_s3_upload_is_streamed_in_parts(s3_backend, tmp_path):
    source = tmp_path / "big.bin"
    with source.open("wb") as handle:
        for _ in range(20):
            handle.write(b"\x01" * (1024 * 1024))

    services.object_save(key=KEY, content=source)

    head = storages["default"].connection.meta.client.head_object(
        Bucket=storages["default"].bucket_name, Key=KEY
    )
    assert head["ContentLength"] == 20 * 1024 * 1024
    assert head["ETag"].strip('"').endswith("-3")  # three 8 MiB parts


def test_tampered_local_link_is_refused(local_backend, client):
    services.object_save(key=KEY, content=io.BytesIO(b"x"))
    url = services.object_url(KEY)

    assert client.get(url[:-3] + "abc").status_code == 404


def test_local_storage_check_reports_an_unwritable_location(settings, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(Path(blocker) / "media")},
        },
    }
    with pytest.raises(services.StorageUnavailable):
        services.storage_check()


def test_s3_urls_can_name_a_public_endpoint(s3_backend, settings):
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = "http://media.localhost:9000"

    url = services.object_url(KEY)

    assert url.startswith(f"http://media.localhost:9000/genvault-test/{KEY}?")
