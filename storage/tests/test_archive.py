"""Tests for `storage.archive`: a streamed ZIP that round-trips, stays small in memory
for large entries, opens entries lazily and closes them, and refuses unsafe names."""

import io
import json
import subprocess
import sys
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.conf import settings

from storage.archive import ArchiveEntry, stream_zip

MB = 1024 * 1024
PATTERN = bytes(range(256)) * 1024


class PatternFile(io.RawIOBase):
    """`size` bytes of a repeating pattern, produced as they are read and never held."""

    def __init__(self, size, pattern=PATTERN):
        self.remaining = size
        self.pattern = pattern
        self.offset = 0

    def readable(self):
        return True

    def read(self, size=-1):
        size = self.remaining if size < 0 else min(size, self.remaining)
        size = min(size, len(self.pattern) - self.offset)
        data = self.pattern[self.offset : self.offset + size]
        self.offset = (self.offset + size) % len(self.pattern)
        self.remaining -= size
        return data


class LoggedFile(io.BytesIO):
    def __init__(self, content, log, name):
        super().__init__(content)
        self.log = log
        self.name = name

    def close(self):
        if not self.closed:
            self.log.append(("close", self.name))
        super().close()


class Opener:
    """An entry's opener that logs when it is called and when its file is closed."""

    def __init__(self, content, log, name):
        self.content = content
        self.log = log
        self.name = name
        self.handle = None

    def __call__(self):
        self.log.append(("open", self.name))
        self.handle = LoggedFile(self.content, self.log, self.name)
        return self.handle


def _unzip(chunks):
    return zipfile.ZipFile(io.BytesIO(b"".join(chunks)))


def test_round_trip_keeps_names_contents_and_compression():
    video = bytes(range(256)) * 40
    manifest = b'{"items": []}' * 100
    entries = [
        ArchiveEntry(name="soft/scene_1.mp4", open=lambda: io.BytesIO(video)),
        ArchiveEntry(name="soft/empty.bin", open=io.BytesIO),
        ArchiveEntry(name="manifest.json", data=manifest, compress=True),
    ]

    archive = _unzip(stream_zip(entries, chunk_size=1000))

    assert archive.testzip() is None
    assert archive.namelist() == ["soft/scene_1.mp4", "soft/empty.bin", "manifest.json"]
    assert archive.read("soft/scene_1.mp4") == video
    assert archive.read("soft/empty.bin") == b""
    assert archive.read("manifest.json") == manifest
    assert archive.getinfo("soft/scene_1.mp4").compress_type == zipfile.ZIP_STORED
    assert archive.getinfo("manifest.json").compress_type == zipfile.ZIP_DEFLATED
    assert archive.getinfo("manifest.json").compress_size < len(manifest)


def test_an_empty_archive_is_valid():
    archive = _unzip(stream_zip([]))

    assert archive.namelist() == []
    assert archive.testzip() is None


def test_timestamps_come_from_the_entries_never_the_clock():
    paris = timezone(timedelta(hours=2))
    entries = [
        ArchiveEntry(
            name="dated.txt", data=b"a", modified=datetime(2024, 5, 6, 9, 30, 10, tzinfo=paris)
        ),
        ArchiveEntry(name="undated.txt", data=b"b"),
        ArchiveEntry(name="ancient.txt", data=b"c", modified=datetime(1970, 1, 1, tzinfo=UTC)),
    ]

    first = b"".join(stream_zip(entries))
    archive = zipfile.ZipFile(io.BytesIO(first))

    assert archive.getinfo("dated.txt").date_time == (2024, 5, 6, 7, 30, 10)
    assert archive.getinfo("undated.txt").date_time == (1980, 1, 1, 0, 0, 0)
    assert archive.getinfo("ancient.txt").date_time == (1980, 1, 1, 0, 0, 0)
    assert b"".join(stream_zip(entries)) == first


def test_output_is_yielded_as_it_is_written():
    content = bytes(range(256)) * 64  # 16 KiB
    chunks = list(
        stream_zip(
            [ArchiveEntry(name="big.bin", open=lambda: io.BytesIO(content))], chunk_size=1024
        )
    )

    assert len(chunks) > 16
    assert max(len(chunk) for chunk in chunks) < 2048
    assert _unzip(chunks).read("big.bin") == content


def measure_streaming(path, size, compress):
    """Stream a `size`-byte entry into the file at `path`; returns (chunks, peak bytes
    allocated meanwhile). Run in a fresh interpreter, since tracemalloc also counts
    whatever other threads of a test process allocate."""
    entries = [ArchiveEntry(name="large.bin", open=lambda: PatternFile(size), compress=compress)]
    tracemalloc.start()
    try:
        chunks = 0
        with open(path, "wb") as sink:
            for chunk in stream_zip(entries):
                sink.write(chunk)
                chunks += 1
        return chunks, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "deflated"])
def test_a_large_entry_streams_in_bounded_memory(tmp_path, compress):
    size = 64 * MB
    output = tmp_path / "large.zip"
    measure = (
        "import json, sys\n"
        "from storage.tests.test_archive import measure_streaming\n"
        "print(json.dumps(measure_streaming(sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1')))"
    )

    result = subprocess.run(
        [sys.executable, "-c", measure, str(output), str(size), str(int(compress))],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    chunks, peak = json.loads(result.stdout)
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB"
    assert chunks > 1
    with zipfile.ZipFile(output) as archive:
        assert archive.getinfo("large.bin").file_size == size
        assert archive.testzip() is None


def test_entries_are_opened_one_at_a_time_and_closed():
    log = []
    first = Opener(b"one" * 1000, log, "first")
    second = Opener(b"two" * 1000, log, "second")

    stream = stream_zip(
        [ArchiveEntry(name="1.bin", open=first), ArchiveEntry(name="2.bin", open=second)],
        chunk_size=100,
    )
    assert log == []
    next(stream)
    assert log == [("open", "first")]
    chunks = list(stream)

    assert log == [("open", "first"), ("close", "first"), ("open", "second"), ("close", "second")]
    assert first.handle.closed
    assert second.handle.closed
    assert len(chunks) > 1


def test_an_abandoned_download_closes_the_open_entry():
    log = []
    opener = Opener(b"x" * 10_000, log, "only")
    stream = stream_zip([ArchiveEntry(name="only.bin", open=opener)], chunk_size=100)

    next(stream)
    stream.close()

    assert log == [("open", "only"), ("close", "only")]


class Unreachable(Exception):
    pass


def test_an_opener_error_propagates_after_closing_what_was_open():
    log = []

    def broken():
        raise Unreachable("bucket down")

    entries = [
        ArchiveEntry(name="1.bin", open=Opener(b"fine", log, "first")),
        ArchiveEntry(name="2.bin", open=broken),
        ArchiveEntry(name="3.bin", open=Opener(b"never", log, "third")),
    ]

    with pytest.raises(Unreachable, match="bucket down"):
        list(stream_zip(entries))
    assert log == [("open", "first"), ("close", "first")]


def test_a_read_error_propagates_and_closes_the_entry():
    closed = []

    class Failing(io.BytesIO):
        def read(self, size=-1):
            raise Unreachable("connection reset")

        def close(self):
            closed.append(True)
            super().close()

    with pytest.raises(Unreachable):
        list(stream_zip([ArchiveEntry(name="1.bin", open=Failing)]))
    assert closed == [True]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "\\windows\\system.ini",
        "C:/boot.ini",
        "../outside.txt",
        "soft/../../outside.txt",
        "soft\\..\\outside.txt",
        "soft/..",
        "soft//scene_1.mp4",
        "soft/",
        "item\x00.mp4",
    ],
)
def test_unsafe_names_are_refused(name):
    with pytest.raises(ValueError, match="Unsafe name"):
        ArchiveEntry(name=name, data=b"")


def test_names_with_dots_inside_a_part_are_fine():
    archive = _unzip(stream_zip([ArchiveEntry(name="soft/item..1.mp4", data=b"x")]))

    assert archive.namelist() == ["soft/item..1.mp4"]


def test_a_repeated_name_is_refused_before_anything_is_opened():
    log = []
    entries = [
        ArchiveEntry(name="soft/scene_1.mp4", open=Opener(b"a", log, "first")),
        ArchiveEntry(name="soft/scene_1.mp4", data=b"b"),
    ]

    with pytest.raises(ValueError, match="appears twice"):
        next(stream_zip(entries))
    assert log == []


@pytest.mark.parametrize(
    "content", [{}, {"open": io.BytesIO, "data": b"x"}], ids=["neither", "both"]
)
def test_an_entry_needs_exactly_one_source(content):
    with pytest.raises(ValueError, match="either"):
        ArchiveEntry(name="file.bin", **content)


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="chunk_size"):
        next(stream_zip([], chunk_size=0))
