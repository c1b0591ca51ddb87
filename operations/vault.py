"""Reading secrets from the Infisical vault (universal auth, REST API v3), safely.

The vault sits behind Cloudflare: Access wants its service-token headers on every request, and the
firewall answers 403 with error code 1010 to a request whose User-Agent is missing, empty or the
urllib default. Every request here carries both, and every failure gets its own message naming the
setting or secret to check, never a value: secret values, tokens and client secrets live only in
`SecretValue` objects whose repr and str are redacted.

urllib (standard library) is enough for two JSON calls; it also lets us refuse redirects, so the
bearer token is never sent to a host other than INFISICAL_HOST (Cloudflare Access answers a
rejected service token with a redirect to its login page).
"""

from __future__ import annotations

import hmac
import http.client
import json
import re
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operations.errors import OpsError, TransientError, UsageError
from operations.retry import Backoff, Clock, retry

USER_AGENT = "raxx-ops/1.0"
"""Any non-empty User-Agent other than urllib's clears the firewall; this one names our tools."""

PLACEHOLDER_MARK = "REPLACE_WITH_"
VAULT_BACKOFF = Backoff(first=1.0, factor=2.0, maximum=5.0)
"""Pauses between attempts after a timeout, a broken connection, 429 or 5xx."""
MAX_RESPONSE_BYTES = 1 << 20

SETTINGS_ENV = {
    "host": "INFISICAL_HOST",
    "client_id": "INFISICAL_CLIENT_ID",
    "client_secret": "INFISICAL_CLIENT_SECRET",
    "project_id": "INFISICAL_PROJECT_ID",
    "cf_access_client_id": "CF_ACCESS_CLIENT_ID",
    "cf_access_client_secret": "CF_ACCESS_CLIENT_SECRET",
}
"""Settings and the environment variables they come from (documented in sync_secrets --help)."""

SETTINGS_HELP = """\
  INFISICAL_HOST           the vault's base URL, e.g. https://vault.raxx.app (https required)
  INFISICAL_CLIENT_ID      client id of the vault machine identity (universal auth)
  INFISICAL_CLIENT_SECRET  client secret of that machine identity
  INFISICAL_PROJECT_ID     the vault project (workspace) id holding /MooseQuest/...
  CF_ACCESS_CLIENT_ID      Cloudflare Access service-token client id for the vault
  CF_ACCESS_CLIENT_SECRET  Cloudflare Access service-token client secret"""

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_FIREWALL_1010 = re.compile(r"(error[\s_-]*code[^0-9]{0,40}1010\b)|(\berror\s*1010\b)", re.I)
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_CONFIG_KEY = re.compile(r"^[A-Za-z0-9_-]+:[A-Za-z0-9_.-]+$")


class SecretValue:
    """A secret string that never shows itself in a repr, str, format, log or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The plain value: only for handing it to the one consumer that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "SecretValue('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class VaultSettings:
    """Where the vault is and how to get in; read once from the environment."""

    host: str
    client_id: SecretValue
    client_secret: SecretValue
    project_id: str
    cf_access_client_id: SecretValue
    cf_access_client_secret: SecretValue
    environment: str = "prod"
    timeout_seconds: float = 20.0

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, environment: str = "prod") -> VaultSettings:
        """Settings from the environment; one UsageError listing every missing variable."""
        missing = [var for var in SETTINGS_ENV.values() if not env.get(var, "").strip()]
        if missing:
            raise UsageError(
                f"missing vault settings: {', '.join(missing)}",
                cause="these environment variables must be set (and non-empty):\n" + SETTINGS_HELP,
                hint="export each one in this shell (e.g. export INFISICAL_HOST="
                "https://vault.raxx.app), then run: python scripts/sync_secrets.py --dry-run",
            )
        host = env["INFISICAL_HOST"].strip().rstrip("/")
        parsed = urllib.parse.urlsplit(host)
        if parsed.scheme not in {"https", "http"} or not parsed.hostname:
            raise UsageError(
                "INFISICAL_HOST is not a URL",
                hint="export INFISICAL_HOST=https://vault.raxx.app (scheme and host, no path)",
            )
        if parsed.scheme == "http" and parsed.hostname not in _LOOPBACK_HOSTS:
            # The client secret and token would cross the network in clear text.
            raise UsageError(
                "INFISICAL_HOST uses http:// for a non-local host",
                hint="use the https:// URL of the vault",
            )
        return cls(
            host=host,
            client_id=SecretValue(env["INFISICAL_CLIENT_ID"].strip()),
            client_secret=SecretValue(env["INFISICAL_CLIENT_SECRET"].strip()),
            project_id=env["INFISICAL_PROJECT_ID"].strip(),
            cf_access_client_id=SecretValue(env["CF_ACCESS_CLIENT_ID"].strip()),
            cf_access_client_secret=SecretValue(env["CF_ACCESS_CLIENT_SECRET"].strip()),
            environment=environment,
        )


@dataclass(frozen=True)
class SecretSource:
    """One mapping entry: the vault secret `name` at `path` becomes stack config `key`."""

    key: str
    name: str
    path: str
    secret: bool = True


@dataclass(frozen=True)
class SecretMapping:
    """The mapping file: the vault environment and every secret the stack needs."""

    environment: str
    sources: tuple[SecretSource, ...]

    def select(self, keys: Sequence[str] | None) -> tuple[SecretSource, ...]:
        """The entries for `keys` (all when None); unknown keys are a UsageError."""
        if not keys:
            return self.sources
        known = {s.key: s for s in self.sources}
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise UsageError(
                f"not in the mapping file: {', '.join(unknown)}",
                cause="known keys: " + ", ".join(known),
                hint="pass keys exactly as listed, e.g. --only freescout:license_tags",
            )
        return tuple(known[k] for k in dict.fromkeys(keys))


def load_mapping(path: Path) -> SecretMapping:
    """Read and validate the mapping file (TOML: `environment` and `[[secret]]` tables)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UsageError(f"mapping file {path} not found", hint="pass --mapping FILE") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"mapping file {path} is not valid TOML: {e}") from e
    environment = data.get("environment", "prod")
    entries = data.get("secret")
    if not isinstance(environment, str) or not environment:
        raise UsageError(f"{path}: 'environment' must be a non-empty string")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: no [[secret]] entries")
    sources: list[SecretSource] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: [[secret]] #{number}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where} is not a table")
        extra = set(entry) - {"key", "name", "path", "secret", "note"}
        if extra:
            raise UsageError(f"{where} has unknown fields: {', '.join(sorted(extra))}")
        key, name, vpath = entry.get("key"), entry.get("name"), entry.get("path")
        secret = entry.get("secret", True)
        if not isinstance(key, str) or not _CONFIG_KEY.match(key):
            raise UsageError(f"{where}: 'key' must be a config key like freescout:license_tags")
        if not isinstance(name, str) or not _SECRET_NAME.match(name):
            raise UsageError(f"{where} ({key}): 'name' must be a vault secret name")
        if not isinstance(vpath, str) or not vpath.startswith("/"):
            raise UsageError(f"{where} ({key}): 'path' must start with '/'")
        if not isinstance(secret, bool):
            raise UsageError(f"{where} ({key}): 'secret' must be true or false")
        sources.append(SecretSource(key=key, name=name, path=vpath, secret=secret))
    keys = [s.key for s in sources]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise UsageError(f"{path}: keys mapped twice: {', '.join(duplicates)}")
    return SecretMapping(environment=environment, sources=tuple(sources))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turn every redirect into an HTTPError: the token must not follow it anywhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class VaultClient:
    """Log in to Infisical with universal auth and read raw secrets, with clear failures."""

    def __init__(
        self,
        settings: VaultSettings,
        *,
        attempts: int = 3,
        backoff: Backoff = VAULT_BACKOFF,
        clock: Clock | None = None,
        user_agent: str = USER_AGENT,
    ):
        self.settings = settings
        self._attempts = attempts
        self._backoff = backoff
        self._clock = clock
        self._user_agent = user_agent
        self._token: SecretValue | None = None
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return f"VaultClient(host={self.settings.host!r}, logged_in={self._token is not None})"

    # ------------------------------------------------------------------ API

    def login(self) -> None:
        """Exchange the machine identity's client id and secret for an access token."""
        body = json.dumps(
            {
                "clientId": self.settings.client_id.reveal(),
                "clientSecret": self.settings.client_secret.reveal(),
            }
        ).encode()
        data = self._call(
            "POST", "/api/v1/auth/universal-auth/login", body=body, what="login", secret=None
        )
        token = data.get("accessToken") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise OpsError(
                "the vault's login answer has no accessToken",
                cause="INFISICAL_HOST may point at something that is not Infisical's API",
                hint="check INFISICAL_HOST (the vault's base URL, no path)",
            )
        self._token = SecretValue(token)

    def fetch(self, name: str, path: str) -> SecretValue:
        """The value of secret `name` at `path`; empty and placeholder values are errors."""
        if self._token is None:
            self.login()
        query = urllib.parse.urlencode(
            {
                "workspaceId": self.settings.project_id,
                "environment": self.settings.environment,
                "secretPath": path,
            }
        )
        route = f"/api/v3/secrets/raw/{urllib.parse.quote(name, safe='')}?{query}"
        data = self._call("GET", route, body=None, what="fetch", secret=(name, path))
        where = f"{name} at {path}"
        secret = data.get("secret") if isinstance(data, dict) else None
        value = secret.get("secretValue") if isinstance(secret, dict) else None
        if not isinstance(value, str):
            raise OpsError(
                f"the vault's answer for {where} has no secret.secretValue",
                cause="unexpected JSON shape: INFISICAL_HOST may not be Infisical's API",
                hint="check INFISICAL_HOST, then rerun with --only for this key",
            )
        # Like the runbook's $(...): trailing newlines of a pasted value are not part of it.
        value = value.rstrip("\r\n")
        if not value.strip():
            raise OpsError(
                f"secret {where} is empty in the vault (environment {self.settings.environment})",
                hint=f"set a value for {name} in the vault at {path}, then rerun",
            )
        if PLACEHOLDER_MARK in value:
            raise OpsError(
                f"secret {where} still holds a placeholder ({PLACEHOLDER_MARK}...)",
                hint=f"put the real value of {name} in the vault at {path}, then rerun",
            )
        return SecretValue(value)

    # ------------------------------------------------------------------ HTTP

    def _headers(self, *, auth: bool) -> dict[str, str]:
        headers = {
            "User-Agent": self._user_agent,
            "Accept": "application/json",
            "CF-Access-Client-Id": self.settings.cf_access_client_id.reveal(),
            "CF-Access-Client-Secret": self.settings.cf_access_client_secret.reveal(),
        }
        if auth and self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        return headers

    def _call(
        self,
        method: str,
        route: str,
        *,
        body: bytes | None,
        what: str,
        secret: tuple[str, str] | None,
    ) -> Any:
        def attempt() -> Any:
            headers = self._headers(auth=what != "login")
            if body is not None:
                headers["Content-Type"] = "application/json"
            request = urllib.request.Request(
                self.settings.host + route, data=body, headers=headers, method=method
            )
            return self._send(request, what=what, secret=secret)

        return retry(
            attempt,
            is_transient=lambda e: isinstance(e, TransientError),
            attempts=self._attempts,
            backoff=self._backoff,
            clock=self._clock,
        )

    def _send(
        self, request: urllib.request.Request, *, what: str, secret: tuple[str, str] | None
    ) -> Any:
        host = self.settings.host
        timeout = self.settings.timeout_seconds
        try:
            with self._opener.open(request, timeout=timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as e:
            try:
                text = e.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
            except OSError:
                text = ""
            error = _http_error(e.code, text, e.headers, what=what, host=host, secret=secret)
            raise error from None
        except TimeoutError as e:
            raise _timeout(what, host, timeout) from e
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, TimeoutError):
                raise _timeout(what, host, timeout) from None
            if isinstance(reason, ConnectionRefusedError):
                raise OpsError(
                    f"connection refused by {host} ({what})",
                    cause="nothing listens at that address: wrong INFISICAL_HOST, or a local "
                    "tunnel/proxy is down",
                    hint="check INFISICAL_HOST (https://vault.raxx.app), then rerun",
                ) from None
            raise TransientError(
                f"cannot reach the vault at {host} ({what}): {type(reason).__name__}",
                cause=str(reason) if isinstance(reason, str) else None,
                hint="check the network and INFISICAL_HOST, then rerun",
            ) from None
        except (ConnectionResetError, http.client.HTTPException) as e:
            raise TransientError(
                f"the connection to {host} broke during {what} ({type(e).__name__})",
                hint="rerun in a minute",
            ) from None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise OpsError(
                f"the vault answered {what} with something that is not JSON",
                cause="an HTML page usually means Cloudflare Access did not accept the service "
                "token, or INFISICAL_HOST points at the web app instead of the API",
                hint="check INFISICAL_HOST, CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET",
            ) from None


def _timeout(what: str, host: str, seconds: float) -> TransientError:
    return TransientError(
        f"the vault at {host} did not answer {what} within {seconds:g}s",
        cause="the vault or Cloudflare is slow or unreachable from here",
        hint="rerun in a minute; if it persists, check the vault's status page",
    )


def _http_error(
    status: int,
    body: str,
    headers: Any,
    *,
    what: str,
    host: str,
    secret: tuple[str, str] | None,
) -> OpsError:
    """One clear message per kind of refusal. The body is inspected, never quoted."""
    subject = f"secret {secret[0]} at {secret[1]}" if secret else "login"
    if 300 <= status < 400:
        location = headers.get("Location", "") if headers is not None else ""
        target = urllib.parse.urlsplit(location).hostname or "another page"
        return OpsError(
            f"the vault redirected {what} to {target} instead of answering",
            cause="Cloudflare Access redirects to its login page when the service token is "
            "missing or not accepted",
            hint="check CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET (a service token allowed "
            "by the vault's Access policy)",
        )
    if status == 401:
        if what == "login":
            return OpsError(
                "the vault refused the machine identity (401)",
                cause="INFISICAL_CLIENT_ID / INFISICAL_CLIENT_SECRET are wrong, revoked, or not "
                "universal-auth credentials",
                hint="create a new client secret for the identity in the vault, export it as "
                "INFISICAL_CLIENT_SECRET, then rerun",
            )
        return OpsError(
            f"the vault refused the access token for {subject} (401)",
            cause="the token expired or was revoked during the run",
            hint="rerun: a fresh login gets a new token",
        )
    if status == 403 and _FIREWALL_1010.search(body):
        return OpsError(
            f"Cloudflare's firewall blocked {what} (403, error code 1010)",
            cause="the firewall bans requests by browser signature: a missing, empty or "
            "Python-urllib User-Agent, or missing Cloudflare Access headers",
            hint=f"requests must carry 'User-Agent: {USER_AGENT}' and the CF-Access-Client-Id/"
            "-Secret headers; this tool does, so check for a proxy that rewrites headers",
        )
    if status == 403:
        if _looks_like_infisical_error(body):
            return OpsError(
                f"the vault's machine identity may not read {subject} (403)",
                cause="the identity has no read permission on that project, environment or path",
                hint="grant the identity read access to the path in the vault project "
                "INFISICAL_PROJECT_ID, then rerun",
            )
        return OpsError(
            f"Cloudflare Access refused {what} (403)",
            cause="the Access service token (CF_ACCESS_CLIENT_ID / CF_ACCESS_CLIENT_SECRET) is "
            "wrong, expired, or not allowed by the vault's Access policy",
            hint="check both CF_ACCESS_* variables against the service token in Cloudflare "
            "Zero Trust, then rerun",
        )
    if status == 404:
        if secret:
            name, path = secret
            return OpsError(
                f"the vault has no secret {name} at path {path} (404)",
                cause="the name or the path is wrong (names are case-sensitive), or the secret "
                "is missing from this environment or from project INFISICAL_PROJECT_ID",
                hint="check the entry for it in vault-secrets.toml against the vault, then rerun",
            )
        return OpsError(
            f"the vault at {host} has no login endpoint (404)",
            cause="INFISICAL_HOST is not the Infisical API's base URL",
            hint="export INFISICAL_HOST=https://vault.raxx.app (no path), then rerun",
        )
    if status == 429 or status >= 500:
        return TransientError(
            f"the vault answered {what} for {subject} with HTTP {status}",
            cause="the vault is busy or failing",
            hint="rerun in a minute",
        )
    return OpsError(
        f"the vault answered {what} for {subject} with HTTP {status}",
        hint="check INFISICAL_HOST and the vault's logs",
    )


def _looks_like_infisical_error(body: str) -> bool:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and "statusCode" in data


def fetch_all(client: VaultClient, sources: Sequence[SecretSource]) -> dict[str, SecretValue]:
    """Fetch every source (config key -> value); any failure raises before anything is used."""
    values: dict[str, SecretValue] = {}
    for source in sources:
        values[source.key] = client.fetch(source.name, source.path)
    return values
