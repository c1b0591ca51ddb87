"""ports.HttpProbe with urllib: one GET, redirects not followed, a User-Agent always sent.

FreeScout answers 302 (to the login page) when it works, so the redirect is the answer, not
something to follow. The Cloudflare firewall in front of Raxx's services answers 403 (error 1010)
to a request without a User-Agent, so every request carries one.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from operations.errors import OpsError, TransientError
from operations.ports import HttpProbe

USER_AGENT = "raxx-ops/1.0"
PASSING = frozenset({200, 302})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None  # urllib then raises HTTPError carrying the 3xx status


class UrllibProbe:
    """Implements ports.HttpProbe. `status(url)` returns the first response's status code."""

    def __init__(self, *, timeout: float = 15.0, user_agent: str = USER_AGENT):
        if not user_agent.strip():
            raise ValueError("a non-empty User-Agent is required (the firewall blocks none)")
        self._timeout = timeout
        self._user_agent = user_agent
        self._opener = urllib.request.build_opener(_NoRedirect())

    def status(self, url: str) -> int:
        """GET `url` and return its status code; unreachable hosts raise TransientError."""
        if urlsplit(url).scheme not in {"http", "https"}:
            raise OpsError(f"not an http(s) URL: {url!r}")
        request = urllib.request.Request(
            url, method="GET", headers={"User-Agent": self._user_agent}
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return int(error.code)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise TransientError(
                f"could not reach {url}",
                cause=str(reason),
                hint="check DNS, the static IP attachment and ports 80/443, then rerun",
            ) from error


def check_site(probe: HttpProbe, url: str) -> int:
    """Pass when the site answers 200 or 302; otherwise raise OpsError with the code."""
    code = probe.status(url)
    if code in PASSING:
        return code
    hint = "look at the web server and FreeScout logs on the host"
    if code == 403:
        hint = "a 403 may be the firewall (error 1010: missing User-Agent) or the web server"
    raise OpsError(f"{url} answered HTTP {code}; expected 200 or 302", hint=hint)


def _implements_port(adapter: UrllibProbe) -> HttpProbe:
    return adapter  # mypy checks here that the adapter satisfies ports.HttpProbe
