"""Tests for `generations.source_fetch` against HTTP(S) servers on 127.0.0.1.

No test reaches beyond loopback: an autouse guard fails any test whose code tries to
connect anywhere else, and refusals are asserted to happen before any connection.
"""

from __future__ import annotations

import gzip
import ipaddress
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from generations import source_fetch
from generations.source_fetch import SourceRefused, check_source_url, fetch_source
from tests.tiers import services_required

SMALL_BODY = b"hello, source video"
LARGE_SIZE = 10_000
STREAM_CHUNK = b"x" * 1000
STREAM_CHUNKS = 10
CAP = 1_000_000
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
NON_PUBLIC_ADDRESSES = [
    ("10.0.0.5", "private"),
    ("172.16.3.4", "private"),
    ("192.168.1.10", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("169.254.10.20", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "shared"),
    ("0.0.0.0", "unspecified"),  # noqa: S104
    ("::", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.10", "private"),
    ("::ffff:10.0.0.5", "IPv6 form of a private"),
    ("::ffff:127.0.0.1", "IPv6 form of a loopback"),
    ("::ffff:169.254.169.254", "IPv6 form of a cloud metadata"),
    ("2002:a00:5::1", "IPv6 form of a private"),
    ("64:ff9b::a9fe:a9fe", "IPv6 form of a cloud metadata"),
    ("64:ff9b:1::a00:5", "NAT64"),
]


@dataclass(frozen=True)
class SeenRequest:
    path: str
    headers: dict[str, str]


class RecordingServer(ThreadingHTTPServer):
    """Serves `Handler` and records every request it receives."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[SeenRequest] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients abort mid-response on purpose in these tests; keep the output quiet."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        self.server.requests.append(SeenRequest(self.path, dict(self.headers.items())))
        path = self.path.partition("?")[0]
        if path.startswith("/chain/"):
            self.chain(int(path.removeprefix("/chain/")))
            return
        routes: dict[str, Callable[[], None]] = {
            "/small": self.small,
            "/large": self.large,
            "/stream": self.stream,
            "/gzipped": self.gzipped,
            "/truncated": self.truncated,
            "/slow-body": self.slow_body,
            "/slow-headers": self.slow_headers,
            "/stall": self.stall,
            "/to-internal": lambda: self.redirect(302, "http://internal.example/secret"),
            "/to-file": lambda: self.redirect(302, "file:///etc/passwd"),
            "/no-location": lambda: self.send_body(302, b""),
            "/two-lengths": self.two_lengths,
        }
        routes.get(path, lambda: self.send_body(404, b"not here"))()

    def send_body(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def small(self) -> None:
        self.send_body(200, SMALL_BODY, "video/mp4")

    def large(self) -> None:
        self.send_body(200, b"x" * LARGE_SIZE, "video/mp4")

    def stream(self) -> None:
        """A chunked body with no Content-Length."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(STREAM_CHUNKS):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(STREAM_CHUNK), STREAM_CHUNK))
        self.wfile.write(b"0\r\n\r\n")

    def gzipped(self) -> None:
        """A compressed body, sent although the client asked for none."""
        body = gzip.compress(SMALL_BODY)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def two_lengths(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5, 6")
        self.end_headers()
        self.wfile.write(b"12345")

    def truncated(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"only ten b")
        self.close_connection = True

    def slow_body(self) -> None:
        """Each byte arrives well within a socket timeout; the whole body does not."""
        self.send_response(200)
        self.send_header("Content-Length", "50")
        self.end_headers()
        for _ in range(50):
            time.sleep(0.1)
            self.wfile.write(b"x")

    def slow_headers(self) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(50):
            time.sleep(0.1)
            self.wfile.write(b"X-Padding: 1\r\n")
        self.wfile.write(b"Content-Length: 0\r\n\r\n")

    def stall(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "10")
        self.end_headers()
        time.sleep(3)

    def chain(self, remaining: int) -> None:
        """/chain/N redirects to N-1 (relative), cycling through redirect statuses."""
        status = REDIRECT_STATUSES[remaining % len(REDIRECT_STATUSES)]
        self.redirect(status, str(remaining - 1) if remaining else "/small")

    def redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@dataclass
class Server:
    port: int
    requests: list[SeenRequest]
    server_names: list[str | None] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    @property
    def paths(self) -> list[str]:
        return [request.path for request in self.requests]


@contextmanager
def _serving(server: RecordingServer) -> Iterator[RecordingServer]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def http_server() -> Iterator[Server]:
    with _serving(RecordingServer()) as server:
        yield Server(server.server_address[1], server.requests)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for media.test and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        # .ci/run installs openssl, so under REQUIRE_SERVICES=1 its absence is a failure.
        if services_required():
            pytest.fail("REQUIRE_SERVICES=1 but the openssl command is not installed")
        pytest.skip("the openssl command is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=media.test",
            "-addext", "subjectAltName=DNS:media.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _context: server_names.append(name)
    server = RecordingServer()
    # The handshake then runs in the handler thread, so a client that rejects the
    # certificate cannot stall the accept loop.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    with _serving(server):
        yield Server(server.server_address[1], server.requests, server_names)


@pytest.fixture
def trust_test_certificate(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    monkeypatch.setattr(
        source_fetch, "_tls_context", lambda: ssl.create_default_context(cafile=str(cert))
    )


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every outgoing connect; a connect to anything but a loopback IP fails the test."""
    attempts: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        host, port = address[0], address[1]
        attempts.append((host, port))
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            pytest.fail(f"the code under test tried to connect to {host}:{port}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return attempts


class StubResolver:
    """Resolves names from a fixed table and records each lookup."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


def fetch(url: str, target: Path, **options: Any) -> source_fetch.FetchedSource:
    settings: dict[str, Any] = {"max_bytes": CAP, "timeout_seconds": 5, "allow_loopback": True}
    return fetch_source(url, target, **(settings | options))


# Success


def test_fetches_a_small_body(http_server: Server, tmp_path: Path) -> None:
    target = tmp_path / "source.mp4"

    fetched = fetch(http_server.url("/small"), target)

    assert fetched.path == target
    assert target.read_bytes() == SMALL_BODY
    assert fetched.size == len(SMALL_BODY)
    assert fetched.content_type == "video/mp4"
    assert fetched.final_url == http_server.url("/small")
    assert http_server.requests[0].headers["User-Agent"] == "Genvault/1.0"


def test_follows_relative_redirects_through_every_status(
    http_server: Server, tmp_path: Path
) -> None:
    fetched = fetch(http_server.url("/chain/4"), tmp_path / "source.mp4")

    assert fetched.final_url == http_server.url("/small")
    assert fetched.path.read_bytes() == SMALL_BODY
    assert http_server.paths == [
        "/chain/4",
        "/chain/3",
        "/chain/2",
        "/chain/1",
        "/chain/0",
        "/small",
    ]


def test_connects_to_the_checked_address_with_the_original_host_header(
    http_server: Server, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    resolver = StubResolver({"media.test": ["127.0.0.1"]})

    fetch(http_server.url("/small", host="media.test"), tmp_path / "s", resolver=resolver)

    assert resolver.calls == ["media.test"]
    assert connections == [("127.0.0.1", http_server.port)]
    assert http_server.requests[0].headers["Host"] == f"media.test:{http_server.port}"


def test_streams_a_chunked_body(http_server: Server, tmp_path: Path) -> None:
    fetched = fetch(http_server.url("/stream"), tmp_path / "source.mp4")

    assert fetched.size == len(STREAM_CHUNK) * STREAM_CHUNKS
    assert fetched.path.read_bytes() == STREAM_CHUNK * STREAM_CHUNKS


def test_percent_encodes_the_request_target(http_server: Server, tmp_path: Path) -> None:
    fetch(http_server.url("/small?name=my vidéo"), tmp_path / "source.mp4")

    assert http_server.paths == ["/small?name=my%20vid%C3%A9o"]


def test_stores_a_compressed_body_as_received(http_server: Server, tmp_path: Path) -> None:
    fetched = fetch(http_server.url("/gzipped"), tmp_path / "source.mp4")

    assert fetched.path.read_bytes() == gzip.compress(SMALL_BODY)
    assert http_server.requests[0].headers["Accept-Encoding"] == "identity"


def test_tries_the_next_checked_address_when_one_refuses(
    http_server: Server, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    # The server listens on 127.0.0.1 only, so 127.0.0.2 refuses the connection.
    resolver = StubResolver({"media.test": ["127.0.0.2", "127.0.0.1"]})

    fetched = fetch(http_server.url("/small", host="media.test"), tmp_path / "s", resolver=resolver)

    assert fetched.path.read_bytes() == SMALL_BODY
    assert connections == [("127.0.0.2", http_server.port), ("127.0.0.1", http_server.port)]


def test_https_verifies_the_url_host_while_connecting_to_the_ip(
    https_server: Server, tmp_path: Path, trust_test_certificate: None
) -> None:
    resolver = StubResolver({"media.test": ["127.0.0.1"]})
    url = https_server.url("/small", host="media.test", scheme="https")

    fetched = fetch(url, tmp_path / "source.mp4", resolver=resolver)

    assert fetched.path.read_bytes() == SMALL_BODY
    assert https_server.server_names == ["media.test"]


# Refused before any connection


def test_refuses_loopback_unless_allowed(
    http_server: Server, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    with pytest.raises(SourceRefused, match="loopback"):
        fetch(http_server.url("/small"), tmp_path / "source.mp4", allow_loopback=False)

    assert connections == []
    assert http_server.requests == []


@pytest.mark.parametrize(("address", "problem"), NON_PUBLIC_ADDRESSES)
def test_refuses_non_public_addresses_without_connecting(
    address: str,
    problem: str,
    http_server: Server,
    tmp_path: Path,
    connections: list[tuple[str, int]],
) -> None:
    resolver = StubResolver({"media.test": [address]})

    # allow_loopback must not open up anything beyond 127.0.0.0/8 and ::1.
    with pytest.raises(SourceRefused, match=problem):
        fetch(http_server.url("/small", host="media.test"), tmp_path / "s", resolver=resolver)

    assert resolver.calls == ["media.test"]
    assert connections == []
    assert http_server.requests == []


def test_refuses_when_any_resolved_address_is_not_public(
    http_server: Server, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    resolver = StubResolver({"media.test": ["127.0.0.1", "10.0.0.5"]})

    with pytest.raises(SourceRefused, match="private"):
        fetch(http_server.url("/small", host="media.test"), tmp_path / "s", resolver=resolver)

    assert connections == []


def test_refuses_an_ip_literal_host_without_resolving(
    tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    resolver = StubResolver({})

    with pytest.raises(SourceRefused, match="metadata"):
        fetch("http://169.254.169.254/latest/meta-data/", tmp_path / "s", resolver=resolver)

    assert resolver.calls == []
    assert connections == []


def test_refuses_a_redirect_to_a_private_address(
    http_server: Server, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    resolver = StubResolver({"internal.example": ["10.0.0.5"]})
    target = tmp_path / "source.mp4"

    with pytest.raises(SourceRefused, match=re.escape("internal.example resolves to a private")):
        fetch(http_server.url("/to-internal"), target, resolver=resolver)

    assert http_server.paths == ["/to-internal"]
    assert connections == [("127.0.0.1", http_server.port)]
    assert not target.exists()


def test_refuses_a_redirect_to_another_scheme(http_server: Server, tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match="Only http and https"):
        fetch(http_server.url("/to-file"), tmp_path / "source.mp4")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/video.mp4",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/",
        "data:video/mp4;base64,AAAA",
        "127.0.0.1/video.mp4",
    ],
)
def test_refuses_other_schemes(
    url: str, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    with pytest.raises(SourceRefused, match="Only http and https"):
        fetch(url, tmp_path / "source.mp4")

    assert connections == []


@pytest.mark.parametrize(
    "url",
    ["http://user:secret@127.0.0.1/small", "http://user@127.0.0.1/small", "https://@media.test/"],
)
def test_refuses_credentials_in_the_url(
    url: str, tmp_path: Path, connections: list[tuple[str, int]]
) -> None:
    with pytest.raises(SourceRefused, match="user name or password"):
        fetch(url, tmp_path / "source.mp4")

    assert connections == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http:///video.mp4", "must include a host"),
        ("http://127.0.0.1:99999/", "malformed"),
        ("http://127.0.0.1:70000/", "port must be from 1 to 65535"),
        ("http://127.0.0.1:0/", "port must be from 1 to 65535"),
        ("http://127.0.0.1:http/", "port must be from 1 to 65535"),
        ("http://[::1/", "malformed"),
        ("http://bad host.example/", "not a valid name"),
        ("http://a..b.example/", "not a valid name"),
        ("http://[2606:4700::1%25eth0]/", "not a valid name"),
    ],
)
def test_refuses_malformed_urls(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match=message):
        fetch(url, tmp_path / "source.mp4")


def test_refuses_a_host_that_does_not_resolve(tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match="could not be resolved"):
        fetch("http://nowhere.test/", tmp_path / "source.mp4", resolver=StubResolver({}))


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"],
)
def test_public_addresses_are_acceptable(address: str) -> None:
    parsed = ipaddress.ip_address(address)

    assert source_fetch._address_problem(parsed, allow_loopback=False) is None


# Checking a URL without fetching it


def test_check_accepts_a_host_that_resolves_to_public_addresses(
    connections: list[tuple[str, int]],
) -> None:
    resolver = StubResolver({"media.example": ["93.184.216.34", "2606:4700:4700::1111"]})

    check_source_url("https://media.example/clip.mp4", resolver=resolver)

    assert resolver.calls == ["media.example"]
    assert connections == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://media.example/clip.mp4", "Only http and https"),
        ("media.example/clip.mp4", "Only http and https"),
        ("http:///clip.mp4", "must include a host"),
        ("https://media.example:70000/clip.mp4", "port must be from 1 to 65535"),
        ("https://media.example:0/clip.mp4", "port must be from 1 to 65535"),
        ("https://user:secret@media.example/clip.mp4", "user name or password"),
        ("https://bad host.example/clip.mp4", "not a valid name"),
    ],
)
def test_check_refuses_a_malformed_url_without_resolving(url: str, message: str) -> None:
    resolver = StubResolver({"media.example": ["93.184.216.34"]})

    with pytest.raises(SourceRefused, match=message):
        check_source_url(url, resolver=resolver)

    assert resolver.calls == []


@pytest.mark.parametrize(("address", "problem"), NON_PUBLIC_ADDRESSES)
def test_check_refuses_a_host_that_resolves_to_a_non_public_address(
    address: str, problem: str, connections: list[tuple[str, int]]
) -> None:
    resolver = StubResolver({"media.example": ["93.184.216.34", address]})

    with pytest.raises(SourceRefused, match=problem):
        check_source_url("https://media.example/clip.mp4", resolver=resolver)

    assert connections == []


def test_check_refuses_a_private_address_literal() -> None:
    with pytest.raises(
        SourceRefused, match=re.escape("The host 192.168.1.10 resolves to a private network")
    ):
        check_source_url("http://192.168.1.10/clip.mp4", resolver=StubResolver({}))


def test_check_refuses_loopback_unless_allowed() -> None:
    resolver = StubResolver({"media.example": ["127.0.0.1"]})

    with pytest.raises(SourceRefused, match="loopback"):
        check_source_url("http://media.example/", resolver=resolver)
    check_source_url("http://media.example/", resolver=resolver, allow_loopback=True)


def test_check_refuses_a_host_that_does_not_resolve() -> None:
    with pytest.raises(SourceRefused, match=re.escape("nowhere.example could not be resolved")):
        check_source_url("http://nowhere.example/", resolver=StubResolver({}))


# Refused by the response


def test_refuses_a_declared_length_over_the_cap_before_writing(
    http_server: Server, tmp_path: Path
) -> None:
    target = tmp_path / "source.mp4"

    with pytest.raises(SourceRefused, match="larger than the 1000-byte limit"):
        fetch(http_server.url("/large"), target, max_bytes=1000)

    assert not target.exists()


def test_refuses_a_streamed_body_over_the_cap_and_removes_the_partial_file(
    http_server: Server, tmp_path: Path
) -> None:
    target = tmp_path / "source.mp4"

    with pytest.raises(SourceRefused, match="larger than the 2500-byte limit"):
        fetch(http_server.url("/stream"), target, max_bytes=2500)

    assert not target.exists()


def test_refuses_a_truncated_body(http_server: Server, tmp_path: Path) -> None:
    target = tmp_path / "source.mp4"

    with pytest.raises(SourceRefused, match="closed before the whole source"):
        fetch(http_server.url("/truncated"), target)

    assert not target.exists()


def test_refuses_conflicting_lengths(http_server: Server, tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match=re.escape("127.0.0.1 did not send a valid HTTP")):
        fetch(http_server.url("/two-lengths"), tmp_path / "source.mp4")


def test_refuses_an_error_status(http_server: Server, tmp_path: Path) -> None:
    target = tmp_path / "source.mp4"

    with pytest.raises(SourceRefused, match="HTTP 404 Not Found"):
        fetch(http_server.url("/missing"), target)

    assert not target.exists()


def test_refuses_too_many_redirects(http_server: Server, tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match="redirected more than 3 times"):
        fetch(http_server.url("/chain/9"), tmp_path / "source.mp4", max_redirects=3)

    assert http_server.paths == ["/chain/9", "/chain/8", "/chain/7", "/chain/6"]


def test_refuses_a_redirect_without_a_location(http_server: Server, tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match="without a location"):
        fetch(http_server.url("/no-location"), tmp_path / "source.mp4")


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers", "/stall"])
def test_times_out_on_the_overall_deadline(path: str, http_server: Server, tmp_path: Path) -> None:
    target = tmp_path / "source.mp4"
    started = time.monotonic()

    with pytest.raises(SourceRefused, match=re.escape("timed out after 0.5 seconds")):
        fetch(http_server.url(path), target, timeout_seconds=0.5)

    assert time.monotonic() - started < 1.5
    assert not target.exists()


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
def test_times_out_over_tls_on_the_overall_deadline(
    path: str, https_server: Server, tmp_path: Path, trust_test_certificate: None
) -> None:
    resolver = StubResolver({"media.test": ["127.0.0.1"]})
    url = https_server.url(path, host="media.test", scheme="https")
    target = tmp_path / "source.mp4"
    started = time.monotonic()

    with pytest.raises(SourceRefused, match=re.escape("timed out after 0.5 seconds")):
        fetch(url, target, resolver=resolver, timeout_seconds=0.5)

    assert time.monotonic() - started < 1.5
    assert https_server.paths == [path]
    assert not target.exists()


def test_times_out_during_a_stalled_tls_handshake(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/small"
        started = time.monotonic()

        with pytest.raises(SourceRefused, match=re.escape("timed out after 0.5 seconds")):
            fetch(url, tmp_path / "source.mp4", timeout_seconds=0.5)

    assert time.monotonic() - started < 1.5


# Network failures


def test_reports_a_refused_connection(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(SourceRefused, match=re.escape("127.0.0.1 refused the connection")):
        fetch(f"http://127.0.0.1:{port}/small", tmp_path / "source.mp4")


def test_reports_a_failed_tls_handshake(http_server: Server, tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match=re.escape("secure connection to 127.0.0.1")):
        fetch(http_server.url("/small", scheme="https"), tmp_path / "source.mp4")


def test_refuses_an_untrusted_certificate(https_server: Server, tmp_path: Path) -> None:
    resolver = StubResolver({"media.test": ["127.0.0.1"]})
    url = https_server.url("/small", host="media.test", scheme="https")

    with pytest.raises(
        SourceRefused, match=re.escape("certificate of media.test could not be verified")
    ):
        fetch(url, tmp_path / "source.mp4", resolver=resolver)


def test_refuses_a_certificate_for_another_host(
    https_server: Server, tmp_path: Path, trust_test_certificate: None
) -> None:
    resolver = StubResolver({"other.test": ["127.0.0.1"]})
    url = https_server.url("/small", host="other.test", scheme="https")

    with pytest.raises(
        SourceRefused, match=re.escape("certificate of other.test could not be verified")
    ):
        fetch(url, tmp_path / "source.mp4", resolver=resolver)

    assert https_server.requests == []
