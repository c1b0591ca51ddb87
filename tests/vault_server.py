"""A local HTTP server on 127.0.0.1 that answers like the Infisical vault behind Cloudflare.

It plays three layers in the order a request meets them:
- Cloudflare's firewall: no, empty or `Python-urllib/*` User-Agent -> 403 with the HTML body of
  Cloudflare's error page 1010 ("The owner of this website has banned your access based on your
  browser's signature");
- Cloudflare Access: CF-Access-Client-Id / CF-Access-Client-Secret must match the service token,
  else 403 (a plain "Forbidden" page), or a 302 to the Access login page when `access_redirect`;
- Infisical: universal-auth login (401 for bad credentials), then GET /api/v3/secrets/raw/NAME with
  a bearer token (401 for a wrong one), workspaceId/environment/secretPath checked (404 for an
  unknown secret, 403 JSON when the path is in `forbidden_paths`).

What it does not prove: the real services' exact bodies and headers, TLS, Cloudflare's real
fingerprinting beyond the User-Agent, and token expiry over time. The shapes follow Infisical's API
reference (login -> accessToken; raw secret -> secret.secretValue).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIREWALL_1010_PAGE = """<!DOCTYPE html>
<html class="no-js" lang="en-US"><head><title>Access denied | vault.raxx.app used Cloudflare to
restrict access</title></head><body><div id="cf-wrapper"><div id="cf-error-details">
<h1><span class="cf-error-type">Error</span> <span class="cf-error-code">1010</span></h1>
<span class="cf-footer-item">Ray ID: 8f00000000000000</span>
<h2>Access denied</h2>
<p>The owner of this website (vault.raxx.app) has banned your access based on your browser's
signature (8f00000000000000-ua48).</p></div></div>
<!-- error code: 1010 --></body></html>"""

ACCESS_FORBIDDEN_PAGE = """<!DOCTYPE html><html><head><title>Forbidden</title></head><body>
<h1>Forbidden</h1><p>You don't have permission to view this site.</p></body></html>"""


@dataclass
class VaultState:
    """The vault's data and the behaviours a test switches on."""

    client_id: str = "identity-client-id"
    client_secret: str = "identity-client-secret-0f9e"
    project_id: str = "project-0001"
    cf_client_id: str = "cf-access-id.access"
    cf_client_secret: str = "cf-access-secret-7a7a"
    environment: str = "prod"
    token: str = "access-token-3c3c"
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)  # (path, name) -> value
    delay_seconds: float = 0.0  # the "slow endpoint": every answer waits this long
    forbidden_paths: set[str] = field(default_factory=set)
    access_redirect: bool = False
    raw_answer: tuple[int, str, bytes] | None = None  # force (status, content type, body)
    requests: list[dict[str, object]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: VaultServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        pass  # keep test output clean; requests are recorded in state.requests

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def _send(self, status: int, body: bytes, content_type: str, extra=None) -> None:  # type: ignore[no-untyped-def]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8")

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        state.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": url.query,
                # Header names as sent on the wire are case-insensitive: keep them lowercase.
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        )
        if state.delay_seconds:
            time.sleep(state.delay_seconds)

        user_agent = self.headers.get("User-Agent", "")
        if not user_agent.strip() or user_agent.startswith("Python-urllib"):
            self._send(403, FIREWALL_1010_PAGE.encode(), "text/html; charset=UTF-8")
            return
        if (
            self.headers.get("CF-Access-Client-Id") != state.cf_client_id
            or self.headers.get("CF-Access-Client-Secret") != state.cf_client_secret
        ):
            if state.access_redirect:
                login = "https://raxx.cloudflareaccess.com/cdn-cgi/access/login/vault.raxx.app"
                self._send(302, b"", "text/html", {"Location": login})
            else:
                self._send(403, ACCESS_FORBIDDEN_PAGE.encode(), "text/html")
            return
        if state.raw_answer is not None:
            status, content_type, raw = state.raw_answer
            self._send(status, raw, content_type)
            return

        if self.command == "POST" and url.path == "/api/v1/auth/universal-auth/login":
            self._login(body)
        elif self.command == "GET" and url.path.startswith("/api/v3/secrets/raw/"):
            name = urllib.parse.unquote(url.path[len("/api/v3/secrets/raw/") :])
            self._secret(name, urllib.parse.parse_qs(url.query))
        else:
            self._json(404, {"statusCode": 404, "message": "Route not found", "error": "NotFound"})

    def _login(self, body: bytes) -> None:
        state = self.server.state
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            self._json(400, {"statusCode": 400, "message": "Bad JSON", "error": "BadRequest"})
            return
        known = (state.client_id, state.client_secret)
        if (data.get("clientId"), data.get("clientSecret")) != known:
            self._json(
                401, {"statusCode": 401, "message": "Invalid credentials", "error": "Unauthorized"}
            )
            return
        self._json(
            200,
            {
                "accessToken": state.token,
                "expiresIn": 7200,
                "accessTokenMaxTTL": 43200,
                "tokenType": "Bearer",
            },
        )

    def _secret(self, name: str, query: dict[str, list[str]]) -> None:
        state = self.server.state
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            self._json(
                401, {"statusCode": 401, "message": "Token invalid", "error": "Unauthorized"}
            )
            return
        path = query.get("secretPath", ["/"])[0]
        if path in state.forbidden_paths:
            self._json(
                403,
                {"statusCode": 403, "message": "Permission denied", "error": "PermissionDenied"},
            )
            return
        value = state.secrets.get((path, name))
        if (
            query.get("workspaceId") != [state.project_id]
            or query.get("environment") != [state.environment]
            or value is None
        ):
            self._json(
                404,
                {
                    "statusCode": 404,
                    "message": f"Secret with name '{name}' not found",
                    "error": "NotFound",
                },
            )
            return
        self._json(
            200,
            {
                "secret": {
                    "_id": "65f0",
                    "version": 1,
                    "workspace": state.project_id,
                    "environment": state.environment,
                    "type": "shared",
                    "secretKey": name,
                    "secretValue": value,
                    "secretComment": "",
                }
            },
        )


def vault_env(url: str, state: VaultState) -> dict[str, str]:
    """The six vault settings (environment variables) for a client of a vault at `url`."""
    return {
        "INFISICAL_HOST": url,
        "INFISICAL_CLIENT_ID": state.client_id,
        "INFISICAL_CLIENT_SECRET": state.client_secret,
        "INFISICAL_PROJECT_ID": state.project_id,
        "CF_ACCESS_CLIENT_ID": state.cf_client_id,
        "CF_ACCESS_CLIENT_SECRET": state.cf_client_secret,
    }


class VaultServer(ThreadingHTTPServer):
    """The server; `url` is its base URL. Use as a context manager (starts and stops a thread)."""

    daemon_threads = True

    def __init__(self, state: VaultState | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state or VaultState()
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        # A client that timed out has gone before the slow answer is written: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self) -> dict[str, str]:
        """The six vault settings for a client of this server."""
        return vault_env(self.url, self.state)

    def __enter__(self) -> VaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
