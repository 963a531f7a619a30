"""Response hardening and login throttling for the dashboard.

* Every response gets a Content-Security-Policy that allows scripts from nowhere (the pages
  need none: forms and links, and the chart is server-side SVG), ``frame-ancestors 'none'``
  against click-jacking, ``nosniff`` and a same-origin referrer policy.
* The session cookie is ``HttpOnly`` and ``SameSite=Lax`` always, and ``Secure`` whenever the
  request came over TLS (directly, or through a proxy the WSGI server trusts), so one
  configuration works for ``http://127.0.0.1`` development and HTTPS production.
* :class:`LoginThrottle` counts failed logins in a sliding window per username and per client
  address; past the limit the login answers 429 until the window moves on. It lives in the
  process (one waitress process serves the dashboard); a multi-process deployment gets one
  window per process, which still bounds guessing to ``processes × limit`` per window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface

CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def add_security_headers(response: Response) -> Response:
    """``after_request`` hook: set :data:`HEADERS`, and no caching of signed-in pages."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class TlsAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with ``Secure`` set whenever the request is HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        secure = bool(app.config["SESSION_COOKIE_SECURE"])
        try:
            return secure or request.is_secure
        except RuntimeError:  # outside a request
            return secure


class LoginThrottle:
    """Failed-login counter per key in a sliding window (thread-safe).

    :param limit: failures allowed per key within ``window_s``
    :param window_s: window length in seconds
    :param clock: monotonic time source (tests pass a fake one)
    """

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> int:
        """Seconds until every key may try again (0: allowed now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.limit:
                    wait = max(wait, times[0] + self.window_s - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        """Count one failure against every key."""
        now = self._clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (the user, after a good login)."""
        with self._lock:
            self._failures.pop(key, None)


def client_address(req: Request) -> str:
    """The client's address as the WSGI server reports it (after trusted-proxy handling)."""
    return req.remote_addr or "unknown"
