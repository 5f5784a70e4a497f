"""Download a user-supplied source URL without letting it reach internal services.

`fetch_source` is the only way the worker should fetch a URL a user typed in;
`check_source_url` applies its rules without fetching. A host is resolved once and refused
unless every address is public; urllib3 then connects to a checked address only, so a
second DNS answer cannot redirect the request. Each redirect is checked again.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.ssl_match_hostname import CertificateError

__all__ = ["FetchedSource", "Resolver", "SourceRefused", "check_source_url", "fetch_source"]

Resolver = Callable[[str, int], list[str]]
"""Maps a host name and port to the IP address strings it resolves to."""

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CHUNK_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")
# Sizes are enforced on the bytes as stored, so no compressed transfer.
_HEADERS = {"User-Agent": "Genvault/1.0", "Accept": "*/*", "Accept-Encoding": "identity"}

_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_SPECIAL_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv4Network("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "a local-use NAT64 address"),
)


class SourceRefused(Exception):
    """The URL may not be fetched (scheme, address, size, time, status); `str(exc)` is a
    clear message that can be shown to the user as is."""


@dataclass(frozen=True)
class FetchedSource:
    """A source body saved to disk."""

    path: Path
    final_url: str
    content_type: str
    size: int


@dataclass(frozen=True)
class _Target:
    """A checked URL: what its request says and the addresses it may connect to."""

    url: str
    scheme: str
    host: str  # ASCII host name or IP literal, without IPv6 brackets
    port: int
    request_target: str
    addresses: tuple[_IPAddress, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


class _Deadline:
    """The running time budget of one fetch, until closed. Socket timeouts bound each
    receive, not their sum, so when the budget runs out every watched socket is shut down."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.passed = False
        self._expires_at = time.monotonic() + seconds
        self._watched: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._shut_down_watched)
        self._timer.start()

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._watched:
                sock.close()

    def remaining(self) -> float:
        """Seconds left; raises SourceRefused once the budget is spent."""
        left = self._expires_at - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> SourceRefused:
        return SourceRefused(f"Fetching the source URL timed out after {self.seconds:g} seconds.")

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor, because TLS wrapping detaches `sock` from the connection.
        with self._lock:
            self._watched.append(sock.dup())
        if self.passed:
            self._shut_down_watched()

    def _shut_down_watched(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._watched:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _PinnedConnection(HTTPConnection):
    """An HTTP connection whose socket only goes to the target's checked addresses."""

    def __init__(self, *args: Any, target: _Target, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._target = target
        self._deadline = deadline

    def _new_conn(self) -> socket.socket:
        *others, last = self._target.addresses
        for address in others:
            with suppress(OSError):
                return _open_socket(address, self._target.port, self._deadline)
        return _open_socket(last, self._target.port, self._deadline)


class _PinnedHTTPSConnection(_PinnedConnection, HTTPSConnection):
    """The same with TLS, which urllib3 sets up over that socket."""


def fetch_source(
    url: str,
    target: Path,
    *,
    max_bytes: int,
    timeout_seconds: float,
    max_redirects: int = 5,
    resolver: Resolver | None = None,
    allow_loopback: bool = False,
) -> FetchedSource:
    """Download `url` into `target`, following up to `max_redirects` redirects; each URL
    must pass `check_source_url`, and `timeout_seconds` bounds all but name resolution.

    Raises SourceRefused if a complete 2xx body of at most `max_bytes` cannot be saved,
    removing a partly written `target` first.
    """
    resolve = resolver or _resolve_with_getaddrinfo
    with closing(_Deadline(timeout_seconds)) as deadline:
        for _ in range(max_redirects + 1):
            current = _checked(url, resolve, allow_loopback=allow_loopback)
            try:
                with _get(current, deadline) as response:
                    location = response.get_redirect_location()
                    if location is not False:
                        url = _redirect_url(current, response.status, location)
                        continue
                    _require_success(response.status)
                    size = _save_body(response, target, max_bytes=max_bytes, deadline=deadline)
                    content_type = response.headers.get("Content-Type", "")
            except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
                raise _refusal(exc, current.host, deadline) from exc
            return FetchedSource(
                target, current.url, content_type or "application/octet-stream", size
            )
    raise SourceRefused(f"The source URL redirected more than {max_redirects} times.")


def check_source_url(
    url: str, *, resolver: Resolver | None = None, allow_loopback: bool = False
) -> None:
    """Raise SourceRefused unless `url` is http(s) without credentials, with a valid host
    and port, and the host resolves only to public addresses; never connects. `resolver`
    replaces `socket.getaddrinfo`; `allow_loopback` (tests and local development only)
    also permits 127.0.0.0/8 and ::1."""
    _checked(url, resolver or _resolve_with_getaddrinfo, allow_loopback=allow_loopback)


def _checked(url: str, resolve: Resolver, *, allow_loopback: bool) -> _Target:
    """The guard of `check_source_url`, returning what `fetch_source` needs to connect."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise SourceRefused("The source URL is malformed.") from exc
    if parts.scheme not in _DEFAULT_PORTS:
        raise SourceRefused("Only http and https source URLs can be fetched.")
    if "@" in parts.netloc:
        raise SourceRefused("Source URLs may not contain a user name or password.")
    try:
        port = _DEFAULT_PORTS[parts.scheme] if parts.port is None else parts.port
    except ValueError:  # not a number, or over 65535
        port = 0
    if port == 0:
        raise SourceRefused("The source URL is malformed: its port must be from 1 to 65535.")
    host = _ascii_host(parts.hostname)
    try:
        literal = _ip_or_none(host) is not None
        resolved = [host] if literal else list(dict.fromkeys(resolve(host, port)))
    except OSError as exc:
        raise SourceRefused(f"The host {host} could not be resolved.") from exc
    if not resolved:
        raise SourceRefused(f"The host {host} did not resolve to any address.")
    addresses: list[_IPAddress] = []
    for raw in resolved:
        address = _ip_or_none(raw)
        if address is None:
            raise SourceRefused(f"The host {host} resolved to an invalid address.")
        problem = _address_problem(address, allow_loopback=allow_loopback)
        if problem is not None:
            raise SourceRefused(f"The host {host} resolves to {problem}, which may not be fetched.")
        addresses.append(address)
    # urllib3 percent-encodes whatever may not appear on the request line.
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(url, parts.scheme, host, port, request_target, tuple(addresses))


def _ascii_host(hostname: str | None) -> str:
    """Return the host as an IP literal or ASCII (IDNA) name safe for the Host header."""
    if not hostname:
        raise SourceRefused("The source URL must include a host.")
    # IPv6 zone IDs ("%eth0") fall through and are refused as invalid names.
    if _ip_or_none(hostname) is not None and "%" not in hostname:
        return hostname
    try:
        ascii_host = hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise SourceRefused(f"The source URL host {hostname!r} is not a valid name.") from exc
    if not _HOSTNAME.fullmatch(ascii_host):
        raise SourceRefused(f"The source URL host {hostname!r} is not a valid name.")
    return ascii_host


def _ip_or_none(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _resolve_with_getaddrinfo(host: str, port: int) -> list[str]:
    """The default resolver: every address the system resolver gives for TCP."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address_problem(address: _IPAddress, *, allow_loopback: bool) -> str | None:
    """Describe why `address` must not be connected to, or return None if it may be."""
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        # Traffic to these forms ends up at the embedded IPv4 address, so judge that one.
        problem = _address_problem(embedded, allow_loopback=False)
        return None if problem is None else f"an IPv6 form of {problem}"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    for network, description in _SPECIAL_NETWORKS:
        if address in network:
            return description
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a private network address"
    return None


def _embedded_ipv4(address: _IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or well-known NAT64 IPv6 address."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.ipv4_mapped if address.ipv4_mapped is not None else address.sixtofour


@contextmanager
def _get(target: _Target, deadline: _Deadline) -> Iterator[urllib3.BaseHTTPResponse]:
    """Send one GET over a fresh connection and yield the response once its headers are read."""
    remaining = deadline.remaining()
    tls: dict[str, Any] = {}
    if target.scheme == "https":
        # Verified against the URL's host, not the address the pool is named after.
        tls = {"server_hostname": target.host, "assert_hostname": target.host}
        tls["ssl_context"] = _tls_context()
    pool_class = urllib3.HTTPSConnectionPool if tls else urllib3.HTTPConnectionPool
    # Named after a checked address, the pool has no host name to look up again.
    pool = pool_class(
        str(target.addresses[0]),
        target.port,
        timeout=urllib3.Timeout(connect=remaining, read=remaining),
        headers=_HEADERS | {"Host": target.host_header, "Connection": "close"},
        retries=False,
        target=target,
        deadline=deadline,
        **tls,
    )
    pool.ConnectionCls = _PinnedHTTPSConnection if tls else _PinnedConnection
    with pool:
        response = pool.urlopen("GET", target.request_target, redirect=False, preload_content=False)
        with response:
            yield response


def _open_socket(address: _IPAddress, port: int, deadline: _Deadline) -> socket.socket:
    sock = socket.create_connection((str(address), port), timeout=deadline.remaining())
    deadline.watch(sock)
    return sock


def _tls_context() -> ssl.SSLContext:
    """A client context that verifies certificates against the system CAs."""
    return ssl.create_default_context()


def _refusal(error: BaseException, host: str, deadline: _Deadline) -> SourceRefused:
    """A plain message for a socket, TLS or HTTP error, however urllib3 wrapped it."""
    causes = [error]
    while (cause := causes[-1].__cause__ or causes[-1].__context__) and cause not in causes:
        causes.append(cause)

    def found(*kinds: type[BaseException]) -> BaseException | None:
        return next((cause for cause in causes if isinstance(cause, kinds)), None)

    if deadline.passed or found(TimeoutError, ReadTimeoutError):
        return deadline.expired()
    if unverified := found(ssl.SSLCertVerificationError, CertificateError):
        reason = str(getattr(unverified, "verify_message", None) or unverified).rstrip(".")
        return SourceRefused(f"The TLS certificate of {host} could not be verified ({reason}).")
    if found(ssl.SSLError, urllib3.exceptions.SSLError):
        return SourceRefused(f"A secure connection to {host} could not be established.")
    if found(ConnectionRefusedError):
        return SourceRefused(f"{host} refused the connection.")
    if found(http.client.IncompleteRead):
        return SourceRefused("The connection closed before the whole source was received.")
    if found(http.client.HTTPException, urllib3.exceptions.InvalidHeader):
        return SourceRefused(f"{host} did not send a valid HTTP response.")
    return SourceRefused(f"The connection to {host} failed.")


def _redirect_url(current: _Target, status: int, location: str | None) -> str:
    if not location:
        raise SourceRefused(f"The source URL sent a redirect (HTTP {status}) without a location.")
    return urljoin(current.url, location.strip())


def _require_success(status: int) -> None:
    if not 200 <= status < 300:
        described = f"{status} {http.client.responses.get(status, '')}".rstrip()
        raise SourceRefused(f"The source URL answered with HTTP {described}.")


def _save_body(
    response: urllib3.BaseHTTPResponse, path: Path, *, max_bytes: int, deadline: _Deadline
) -> int:
    """Stream the body into `path` and return its size, refusing it (and removing `path`)
    once over `max_bytes`; urllib3 refuses a body shorter than its declared length."""
    too_large = SourceRefused(f"The source is larger than the {max_bytes}-byte limit.")
    if (response.length_remaining or 0) > max_bytes:
        raise too_large
    size = 0
    try:
        with path.open("wb") as file:
            for chunk in response.stream(_CHUNK_SIZE, decode_content=False):
                size += len(chunk)
                if size > max_bytes:
                    raise too_large
                file.write(chunk)
        if deadline.passed:
            # The deadline cut the connection, so the body may be short.
            raise deadline.expired()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return size
