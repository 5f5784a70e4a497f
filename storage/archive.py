"""A ZIP archive written as a stream of bytes, for downloads of any size.

Entries are opened one at a time and copied in chunks, so memory stays around one chunk
per entry however large the files are; nothing is seeked, so the archive can go straight
into an HTTP response.
"""

import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

# The earliest moment a ZIP header can record, and the timestamp of undated entries.
# Headers hold naive times; aware times are recorded in UTC.
ZIP_EPOCH = datetime(1980, 1, 1)
# A regular file readable by everyone, writable by its owner, once extracted on Unix.
_FILE_MODE = 0o100644 << 16
# "C:" and similar: absolute on Windows.
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of an archive: `data` held in memory, or `open` called when the entry is
    reached and read in chunks. Exactly one of the two is given; an unsafe `name`
    (empty, absolute, or with a `..` part) raises ValueError here."""

    name: str
    open: Callable[[], IO[bytes]] | None = None
    data: bytes | None = None
    # Media is already compressed and is stored as is; text such as JSON is deflated.
    compress: bool = False
    modified: datetime | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if (self.open is None) == (self.data is None):
            raise ValueError(f"Archive entry {self.name!r} needs either `open` or `data`")


def stream_zip(entries: Iterable[ArchiveEntry], *, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """Yield a ZIP archive of `entries`, in their order, as it is written.

    At most about one `chunk_size` of an opened entry is held at a time, and each opened
    file is closed before the next one is opened, also when the consumer stops early.
    Opened entries use ZIP64 headers since their size is unknown beforehand; timestamps
    come from `modified` (aware times in UTC; none or before 1980: ZIP_EPOCH), never from
    the clock, so the same entries give the same bytes. A repeated name raises ValueError
    before the first byte.

    If an opener or a read raises, the exception propagates and the archive stays
    unfinished: served over HTTP, the client sees an aborted download, not a valid but
    incomplete archive.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    pending = list(entries)
    _check_unique(pending)
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w") as archive:
        for entry in pending:
            info = _info(entry)
            if entry.data is not None:
                archive.writestr(info, entry.data)
            elif entry.open is not None:
                source = entry.open()
                try:
                    with archive.open(info, mode="w", force_zip64=True) as target:
                        while chunk := source.read(chunk_size):
                            target.write(chunk)
                            if written := sink.drain():
                                yield written
                finally:
                    source.close()
            if written := sink.drain():
                yield written
    # The central directory, written when the archive closes; after an error nothing
    # more is yielded, so a truncated archive never looks complete.
    yield sink.drain()


def _check_name(name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if (
        not name
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or _DRIVE.match(name)
        or ".." in parts
        or "" in parts
    ):
        raise ValueError(f"Unsafe name for an archive entry: {name!r}")


def _check_unique(entries: list[ArchiveEntry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise ValueError(f"Archive entry {entry.name!r} appears twice")
        seen.add(entry.name)


def _info(entry: ArchiveEntry) -> zipfile.ZipInfo:
    moment = entry.modified or ZIP_EPOCH
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    info = zipfile.ZipInfo(entry.name, date_time=max(moment, ZIP_EPOCH).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if entry.compress else zipfile.ZIP_STORED
    info.external_attr = _FILE_MODE
    return info


class _Sink:
    """A write-only, unseekable file: zipfile then writes sizes after each entry's data
    instead of seeking back, and what it wrote is taken out with `drain`."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: written bytes wait in the buffer until drained."""

    def close(self) -> None:
        self._buffer.clear()

    def drain(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data
