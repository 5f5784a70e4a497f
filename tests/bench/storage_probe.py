"""Run one storage or media operation in a fresh process and print its peak memory growth
as JSON: `python -m tests.bench.storage_probe MODE PATH`. A fresh process, so that the
growth belongs to the operation alone (VmHWM, reset just before it)."""

import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import av
    from django.core.files.base import ContentFile

    from generations.media import previews
    from storage.services import media_storage, object_delete, object_save
    from tests.bench.measure import reset_peak_rss, rss_kib

    key = f"bench/{mode}-{os.getpid()}.bin"
    # Warm up: load boto3 and open the connection before measuring.
    object_save(key=key + ".warm", content=io.BytesIO(b"warm"))
    object_delete(key + ".warm")
    target = Path(tempfile.mkdtemp()) / "thumb.jpg"
    before = rss_kib()
    reset_peak_rss()
    started = time.perf_counter()
    if mode == "object_save":
        object_save(key=key, content=path)
    elif mode == "naive_save":
        with path.open("rb") as handle:
            media_storage().save(key, ContentFile(handle.read()))
    elif mode == "thumbnail":
        previews.video_thumbnail(path, target)
    elif mode == "naive_thumbnail":
        with av.open(io.BytesIO(path.read_bytes()), mode="r") as container:
            stream = container.streams.video[0]
            frame = next(container.decode(stream))
            frame.to_image().save(target)
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - started
    peak = rss_kib("VmHWM")
    if mode.endswith("save"):
        object_delete(key)
    print(json.dumps({"seconds": seconds, "growth_mb": (peak - before) / 1024}))


if __name__ == "__main__":
    main()
