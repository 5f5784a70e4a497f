"""Download a user-supplied source URL without letting it reach internal services.

`fetch_source` is the only way the worker should fetch a URL a user typed in. It resolves
each host once, refuses unless every address is publicly routable, then connects to that
checked address itself, so a second DNS answer (rebinding) can never redirect the request.
Redirects are followed by hand and every hop is checked again. Size and time are capped.

It owns the socket and writes the small GET request itself; `http.client` only parses
the response.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, quote, urljoin, urlsplit

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["FetchedSource", "Resolver", "SourceRefused", "fetch_source"]

Resolver = Callable[[str, int], list[str]]
"""Maps a host name and port to the IP address strings it resolves to."""

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_USER_AGENT = "Genvault/1.0"
_CHUNK_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")
# RFC 3986 reserved and sub-delimiter characters plus "%" (so existing escapes survive);
# everything else, including spaces and non-ASCII, is percent-encoded.
_REQUEST_TARGET_SAFE = "/?:@!$&'()*+,;=%"

_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_SPECIAL_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv4Network("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "a local-use NAT64 address"),
)
_TRUNCATED = "The connection closed before the whole source was received."


class SourceRefused(Exception):
    """The URL may not be fetched (scheme, address, size, time, status).

    `str(exc)` is a clear message that can be shown to the user as is.
    """


@dataclass(frozen=True)
class FetchedSource:
    """A source body saved to disk."""

    path: Path
    final_url: str
    content_type: str
    size: int


@dataclass(frozen=True)
class _Target:
    """One validated request: where it goes and what goes on the request line."""

    url: str
    scheme: str
    host: str  # ASCII host name or IP literal, without IPv6 brackets
    port: int
    request_target: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class _Deadline:
    """A monotonic time budget shared by every step of one fetch."""

    seconds: float
    expires_at: float

    @classmethod
    def start(cls, seconds: float) -> _Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left; raises SourceRefused once the budget is spent."""
        left = self.expires_at - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> SourceRefused:
        return SourceRefused(f"Fetching the source URL timed out after {self.seconds:g} seconds.")


class _DeadlineReader(io.RawIOBase):
    """Raw socket reader that bounds every receive by the time left in the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        self._sock.settimeout(self._deadline.remaining())
        return self._sock.recv_into(buffer)


class _DeadlineResponse(http.client.HTTPResponse):
    """An HTTP response whose header and body reads all respect the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        super().__init__(sock, method="GET")
        # A plain socket timeout applies per receive, so a server trickling one byte at a
        # time could hold the fetch open indefinitely; this reader checks the deadline.
        self.fp.close()
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


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
    """Download `url` into `target` and describe what was saved.

    Only http(s) URLs without credentials are fetched, and only when every address the
    host resolves to is publicly routable; `allow_loopback` (tests and local development
    only) additionally permits 127.0.0.0/8 and ::1. Up to `max_redirects` redirects are
    followed, each checked like the original URL. Bodies over `max_bytes` are refused,
    and `timeout_seconds` bounds connecting, redirects and the body together (host name
    resolution is bounded by the resolver itself). `resolver` replaces
    `socket.getaddrinfo` for host name lookups.

    Raises SourceRefused for anything that prevents a complete 2xx body from being
    saved; a partly written `target` is removed first.
    """
    deadline = _Deadline.start(timeout_seconds)
    resolve = resolver or _resolve_with_getaddrinfo
    current = _parse_target(url)
    for _ in range(max_redirects + 1):
        addresses = _checked_addresses(current, resolve, allow_loopback=allow_loopback)
        with (
            _network_errors_refused(current, deadline),
            _exchange(current, addresses, deadline) as response,
        ):
            if response.status in _REDIRECT_STATUSES:
                current = _redirect_target(current, response)
                continue
            _require_success(response)
            size = _stream_body(response, target, max_bytes=max_bytes)
            content_type = response.getheader("Content-Type") or "application/octet-stream"
            return FetchedSource(
                path=target, final_url=current.url, content_type=content_type, size=size
            )
    raise SourceRefused(f"The source URL redirected more than {max_redirects} times.")


def _parse_target(url: str) -> _Target:
    """Validate the scheme, credentials and host of `url`; no network access."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SourceRefused("The source URL is malformed.") from exc
    if parts.scheme not in _DEFAULT_PORTS:
        raise SourceRefused("Only http and https source URLs can be fetched.")
    if "@" in parts.netloc:
        raise SourceRefused("Source URLs may not contain a user name or password.")
    return _Target(
        url=url,
        scheme=parts.scheme,
        host=_ascii_host(parts.hostname),
        port=port or _DEFAULT_PORTS[parts.scheme],
        request_target=_request_target(parts),
    )


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


def _request_target(parts: SplitResult) -> str:
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return quote(target, safe=_REQUEST_TARGET_SAFE)


def _ip_or_none(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _resolve_with_getaddrinfo(host: str, port: int) -> list[str]:
    """The default resolver: every address the system resolver gives for TCP."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _checked_addresses(
    target: _Target, resolve: Resolver, *, allow_loopback: bool
) -> list[_IPAddress]:
    """Resolve the host once; refuse unless every address may be connected to."""
    addresses = [_parse_resolved(raw, target.host) for raw in _lookup(target, resolve)]
    if not addresses:
        raise SourceRefused(f"The host {target.host} did not resolve to any address.")
    for address in addresses:
        problem = _address_problem(address, allow_loopback=allow_loopback)
        if problem is not None:
            raise SourceRefused(
                f"The host {target.host} resolves to {problem}, which may not be fetched."
            )
    return addresses


def _lookup(target: _Target, resolve: Resolver) -> list[str]:
    if _ip_or_none(target.host) is not None:
        return [target.host]
    try:
        return list(dict.fromkeys(resolve(target.host, target.port)))
    except OSError as exc:
        raise SourceRefused(f"The host {target.host} could not be resolved.") from exc


def _parse_resolved(raw: str, host: str) -> _IPAddress:
    address = _ip_or_none(raw)
    if address is None:
        raise SourceRefused(f"The host {host} resolved to an invalid address.")
    return address


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
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


@contextmanager
def _network_errors_refused(target: _Target, deadline: _Deadline) -> Iterator[None]:
    """Turn socket, TLS and HTTP parsing errors into SourceRefused with a plain message."""
    try:
        yield
    except TimeoutError as exc:
        raise deadline.expired() from exc
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message.rstrip(".")
        raise SourceRefused(
            f"The TLS certificate of {target.host} could not be verified ({reason})."
        ) from exc
    except ssl.SSLError as exc:
        raise SourceRefused(
            f"A secure connection to {target.host} could not be established."
        ) from exc
    except ConnectionRefusedError as exc:
        raise SourceRefused(f"{target.host} refused the connection.") from exc
    except http.client.IncompleteRead as exc:
        raise SourceRefused(_TRUNCATED) from exc
    except http.client.HTTPException as exc:
        raise SourceRefused(f"{target.host} did not send a valid HTTP response.") from exc
    except OSError as exc:
        raise SourceRefused(f"The connection to {target.host} failed.") from exc


@contextmanager
def _exchange(
    target: _Target, addresses: Sequence[_IPAddress], deadline: _Deadline
) -> Iterator[http.client.HTTPResponse]:
    """Send one GET over a fresh connection and yield the response once its headers are read."""
    sock = _connect(target, addresses, deadline)
    try:
        sock.settimeout(deadline.remaining())
        sock.sendall(_request_bytes(target))
        response = _DeadlineResponse(sock, deadline)
        try:
            response.begin()
            yield response
        finally:
            response.close()
    finally:
        sock.close()


def _connect(
    target: _Target, addresses: Sequence[_IPAddress], deadline: _Deadline
) -> socket.socket:
    """Connect to one of the checked addresses, adding TLS for https."""
    sock = _open_first(addresses, target.port, deadline)
    if target.scheme == "http":
        return sock
    try:
        sock.settimeout(deadline.remaining())
        # server_hostname makes TLS send SNI for, and verify the certificate against, the
        # name in the URL even though the TCP connection goes to a bare IP address.
        return _tls_context().wrap_socket(sock, server_hostname=target.host)
    except BaseException:
        sock.close()
        raise


def _open_first(addresses: Sequence[_IPAddress], port: int, deadline: _Deadline) -> socket.socket:
    """Connect to the first address that accepts; `addresses` must not be empty."""
    errors: list[OSError] = []
    for address in addresses:
        try:
            return _open_socket(address, port, deadline)
        except OSError as exc:
            errors.append(exc)
    raise errors[-1]


def _open_socket(address: _IPAddress, port: int, deadline: _Deadline) -> socket.socket:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(deadline.remaining())
        sock.connect((str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


def _tls_context() -> ssl.SSLContext:
    """A client context that verifies certificates and host names against system CAs."""
    return ssl.create_default_context()


def _request_bytes(target: _Target) -> bytes:
    return (
        f"GET {target.request_target} HTTP/1.1\r\n"
        f"Host: {target.host_header}\r\n"
        f"User-Agent: {_USER_AGENT}\r\n"
        "Accept: */*\r\n"
        # Sizes are enforced on the bytes as stored, so no compressed transfer.
        "Accept-Encoding: identity\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii")


def _redirect_target(current: _Target, response: http.client.HTTPResponse) -> _Target:
    location = response.getheader("Location")
    if not location:
        raise SourceRefused(
            f"The source URL sent a redirect (HTTP {response.status}) without a location."
        )
    return _parse_target(urljoin(current.url, location.strip()))


def _require_success(response: http.client.HTTPResponse) -> None:
    if 200 <= response.status < 300:
        return
    try:
        status = f"{response.status} {HTTPStatus(response.status).phrase}"
    except ValueError:
        status = str(response.status)
    raise SourceRefused(f"The source URL answered with HTTP {status}.")


def _stream_body(response: http.client.HTTPResponse, path: Path, *, max_bytes: int) -> int:
    """Write the body to `path` chunk by chunk and return its size.

    Refuses before reading if the declared length is over `max_bytes`, and stops as soon
    as the received bytes exceed it. On any failure `path` is removed.
    """
    declared = response.length
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes)
    size = 0
    try:
        with path.open("wb") as file:
            while chunk := response.read1(_CHUNK_SIZE):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                file.write(chunk)
        if declared is not None and size < declared:
            raise SourceRefused(_TRUNCATED)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return size


def _too_large(max_bytes: int) -> SourceRefused:
    return SourceRefused(f"The source is larger than the {max_bytes}-byte limit.")
