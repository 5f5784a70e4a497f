"""Reading and writing media objects, whatever the backend (local files or S3).

Every write goes to a caller-chosen stable key and streams from a file object; every URL
handed out is short-lived. Backend failures surface as StorageUnavailable so that the
pipeline can treat them as transient.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.urls import reverse

_URL_SALT = "storage.object-url"
_BACKEND_ERRORS = (OSError, BotoCoreError, ClientError)


class StorageUnavailable(Exception):
    """The storage backend could not be reached or refused the operation."""


class ObjectMissing(Exception):
    """No object is stored under the key."""


def media_storage() -> Storage:
    return storages["default"]


def is_local(storage: Storage | None = None) -> bool:
    return isinstance(storage or media_storage(), FileSystemStorage)


def object_save(*, key: str, content: IO[bytes] | Path) -> int:
    """Write `content` to `key`, replacing any object already there, and return its size.

    The content is streamed: S3 receives it in bounded multipart chunks, local storage in
    64 KiB chunks.
    """
    storage = media_storage()
    try:
        if isinstance(content, Path):
            with content.open("rb") as handle:
                saved_name = storage.save(key, File(handle, name=key))
        else:
            saved_name = storage.save(key, File(content, name=key))
        size = storage.size(saved_name)
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(f"Could not write {key}: {exc}") from exc
    if saved_name != key:
        # Overwrite is configured for every backend; a different name means a
        # misconfiguration that would leave duplicates behind.
        storage.delete(saved_name)
        raise StorageUnavailable(f"Storage renamed {key} to {saved_name}; overwrite is disabled")
    return size


def object_open(key: str) -> File[bytes]:
    """The object as a file to read in chunks, never loaded whole: on S3 the response body
    streams (django-storages' own S3File would first download it all into memory)."""
    storage = media_storage()
    try:
        if is_local(storage):
            if not storage.exists(key):
                raise ObjectMissing(key)
            return storage.open(key, "rb")
        body = storage.bucket.Object(key).get()["Body"]  # type: ignore[attr-defined]
        return File(body, name=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise ObjectMissing(key) from exc
        raise StorageUnavailable(f"Could not read {key}: {exc}") from exc
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(f"Could not read {key}: {exc}") from exc


def object_exists(key: str) -> bool:
    try:
        return media_storage().exists(key)
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(f"Could not look up {key}: {exc}") from exc


def object_size(key: str) -> int:
    try:
        return media_storage().size(key)
    except FileNotFoundError as exc:
        raise ObjectMissing(key) from exc
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(f"Could not look up {key}: {exc}") from exc


def object_delete(key: str) -> None:
    """Delete `key`; deleting a missing object is not an error."""
    try:
        media_storage().delete(key)
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(f"Could not delete {key}: {exc}") from exc


def object_keys(prefix: str) -> Iterator[str]:
    """Every key under `prefix` (a folder path ending in '/'), depth first."""
    storage = media_storage()
    folder = prefix.rstrip("/")
    try:
        directories, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(f"Could not list {prefix}: {exc}") from exc
    for name in files:
        yield f"{folder}/{name}" if folder else name
    for directory in directories:
        yield from object_keys(f"{folder}/{directory}/" if folder else f"{directory}/")


DELETE_BATCH_SIZE = 1000  # the most keys S3 takes in one DeleteObjects request
DELETE_REQUESTS_IN_FLIGHT = 4


def objects_delete(keys: Iterable[str]) -> None:
    """Delete these objects; missing ones are not an error. On S3 one request per 1,000
    keys, a few requests in flight at once."""
    unique = list(dict.fromkeys(keys))
    storage = media_storage()
    if is_local(storage):
        for key in unique:
            object_delete(key)
        return
    client = storage.connection.meta.client  # type: ignore[attr-defined]
    bucket = storage.bucket_name  # type: ignore[attr-defined]

    def delete_batch(batch: list[str]) -> None:
        try:
            response = client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
        except _BACKEND_ERRORS as exc:
            raise StorageUnavailable(f"Could not delete {len(batch)} objects: {exc}") from exc
        if response.get("Errors"):
            first = response["Errors"][0]
            raise StorageUnavailable(
                f"Could not delete {len(response['Errors'])} objects, "
                f"{first.get('Key')}: {first.get('Message')}"
            )

    batches = [
        unique[start : start + DELETE_BATCH_SIZE]
        for start in range(0, len(unique), DELETE_BATCH_SIZE)
    ]
    if len(batches) <= 1:
        for batch in batches:
            delete_batch(batch)
        return
    # boto3 clients are thread-safe; list() re-raises the first failure.
    with ThreadPoolExecutor(max_workers=DELETE_REQUESTS_IN_FLIGHT) as pool:
        list(pool.map(delete_batch, batches))


def prefix_delete(prefix: str) -> int:
    """Delete every object under `prefix` (a folder path ending in '/'); returns how many
    were deleted. On S3 one listing and a batched delete per 1,000 keys, not a request per
    object."""
    storage = media_storage()
    if is_local(storage):
        keys = list(object_keys(prefix))
        for key in keys:
            object_delete(key)
        return len(keys)
    try:
        responses = storage.bucket.objects.filter(Prefix=prefix).delete()  # type: ignore[attr-defined]
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(f"Could not delete {prefix}: {exc}") from exc
    return sum(len(response.get("Deleted", [])) for response in responses)


def object_url(key: str, *, download_name: str | None = None, expires_in: int | None = None) -> str:
    """A URL that serves the object for `expires_in` seconds, then stops working.

    S3: a presigned GET. Local storage: a signed link to our own view, so that local
    files are never served to whoever guesses a path.
    """
    expires_in = expires_in or settings.ASSET_URL_EXPIRE_SECONDS
    storage = media_storage()
    if is_local(storage):
        token = signing.dumps(
            {"k": key, "e": int(time.time()) + expires_in, "d": download_name or ""},
            salt=_URL_SALT,
            compress=True,
        )
        return reverse("storage:object", kwargs={"token": token})
    parameters = {"Bucket": storage.bucket_name, "Key": key}  # type: ignore[attr-defined]
    if download_name:
        parameters["ResponseContentDisposition"] = f'attachment; filename="{download_name}"'
    try:
        return str(
            _signing_client(storage).generate_presigned_url(
                "get_object", Params=parameters, ExpiresIn=expires_in
            )
        )
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(f"Could not sign a URL for {key}: {exc}") from exc


@functools.cache
def _public_client(endpoint_url: str, access_key: str, secret_key: str, region: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _signing_client(storage: Storage) -> Any:
    """The S3 client whose endpoint browsers can reach (signing happens offline)."""
    public_endpoint = settings.AWS_S3_PUBLIC_ENDPOINT_URL
    if not public_endpoint:
        return storage.connection.meta.client  # type: ignore[attr-defined]
    return _public_client(
        public_endpoint,
        storage.access_key,  # type: ignore[attr-defined]
        storage.secret_key,  # type: ignore[attr-defined]
        storage.region_name,  # type: ignore[attr-defined]
    )


def signed_object_lookup(token: str) -> tuple[str, str]:
    """The (key, download name) a local object URL grants; raises ObjectMissing when the
    token is forged, tampered with or expired."""
    try:
        payload = signing.loads(token, salt=_URL_SALT)
    except signing.BadSignature as exc:
        raise ObjectMissing("invalid link") from exc
    if not isinstance(payload, dict) or payload.get("e", 0) < time.time():
        raise ObjectMissing("expired link")
    return str(payload["k"]), str(payload.get("d", ""))


def storage_check() -> None:
    """Raise StorageUnavailable unless the backend answers."""
    storage = media_storage()
    try:
        if isinstance(storage, FileSystemStorage):
            location = Path(storage.location)
            location.mkdir(parents=True, exist_ok=True)
            probe = location / ".healthz"
            probe.write_bytes(b"ok")
            probe.unlink()
        else:
            bucket = storage.bucket  # type: ignore[attr-defined]
            bucket.meta.client.head_bucket(Bucket=bucket.name)
    except _BACKEND_ERRORS as exc:
        raise StorageUnavailable(str(exc)) from exc
