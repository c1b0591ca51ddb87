"""The HTTP probe against a real http.server on 127.0.0.1.

Real: urllib, sockets, status codes, headers on the wire. Not proven: TLS to the real site and
Cloudflare's own behaviour (the local server imitates its 1010 rule only: no User-Agent -> 403).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from operations.errors import OpsError, TransientError
from operations.http_probe import USER_AGENT, UrllibProbe, check_site


class Handler(BaseHTTPRequestHandler):
    seen_agents: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        agent = self.headers.get("User-Agent")
        Handler.seen_agents.append(agent)
        if not agent or agent.startswith("Python-urllib"):
            self.send_response(403)  # the firewall's rule (error 1010)
            self.end_headers()
            self.wfile.write(b"error code: 1010")
            return
        code = {"/ok": 200, "/login": 302, "/boom": 500, "/forbidden": 403}.get(self.path, 404)
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/ok")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch):
    """urllib honours *_proxy variables; a CI proxy must not sit between us and 127.0.0.1."""
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("path", "code"), [("/ok", 200), ("/login", 302), ("/boom", 500), ("/forbidden", 403)]
)
def test_status_codes_without_following_redirects(site, path, code):
    assert UrllibProbe(timeout=5).status(site + path) == code


def test_user_agent_is_always_sent(site):
    Handler.seen_agents.clear()
    UrllibProbe(timeout=5).status(site + "/ok")
    assert Handler.seen_agents == [USER_AGENT]


def test_plain_urllib_would_be_blocked(site):
    """The local firewall rule is live: without our header the same URL answers 403."""
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(site + "/ok", timeout=5)
    assert caught.value.code == 403


def test_check_site_passes_200_and_302_only(site):
    probe = UrllibProbe(timeout=5)
    assert check_site(probe, site + "/ok") == 200
    assert check_site(probe, site + "/login") == 302
    with pytest.raises(OpsError, match="HTTP 500"):
        check_site(probe, site + "/boom")
    with pytest.raises(OpsError, match="HTTP 403") as caught:
        check_site(probe, site + "/forbidden")
    assert "1010" in (caught.value.hint or "")


def test_connection_refused_is_transient():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    with pytest.raises(TransientError, match="could not reach"):
        UrllibProbe(timeout=2).status(f"http://127.0.0.1:{port}/")


def test_a_silent_server_times_out_as_transient():
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(TransientError, match="could not reach"):
            UrllibProbe(timeout=0.5).status(f"http://127.0.0.1:{port}/")


def test_only_http_urls():
    with pytest.raises(OpsError):
        UrllibProbe().status("file:///etc/passwd")
    with pytest.raises(ValueError):
        UrllibProbe(user_agent=" ")
