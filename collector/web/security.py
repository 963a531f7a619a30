"""Response hardening and login throttling for the dashboard.

* Every response gets a Content-Security-Policy that allows scripts from nowhere (the pages
  need none: forms and links, and the chart is server-side SVG), ``frame-ancestors 'none'``
  against click-jacking, ``nosniff`` and a same-origin referrer policy.
* The session cookie is ``HttpOnly`` and ``SameSite=Lax`` always, and ``Secure`` whenever the
  request came over TLS (directly, or through a proxy the WSGI server trusts), so one
  configuration works for ``http://127.0.0.1`` development and HTTPS production.
* CSRF is checked for every state-changing request by one ``before_request``
  (:func:`collector.web.check_csrf`); :data:`CSRF_EXEMPT` lists the endpoints that take no
  token and what protects them instead, :data:`NO_ROLE` the state-changing endpoints that
  need no role. A test walks the URL map against both lists.
* :func:`same_site_path` vets every redirect target that came from the request (``next``):
  only a path on this site is followed, anything else goes to the default page.
* :class:`LoginThrottle` counts failed logins in a sliding window per username and per client
  address; past the limit the login answers 429 until the window moves on. It lives in the
  process (one waitress process serves the dashboard); a multi-process deployment gets one
  window per process, which still bounds guessing to ``processes × limit`` per window.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from settleguard.collector.settings import ensure_secret_key

#: Methods that change state: they need the CSRF token (unless exempt) and a role.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: State-changing endpoints that take no CSRF token, and what protects them instead. These
#: are machine callers with no session cookie for another site to ride on.
CSRF_EXEMPT: dict[str, str] = {
    "enroll.enroll_agent": "the one-time enrollment token in the body",
    "enroll.rotate": "the new key signed by the agent's current key",
    "sms_callbacks.twilio_status": "X-Twilio-Signature over the URL and the form",
    "sms_callbacks.aliyun_report": "the shared SMS_CALLBACK_TOKEN in the URL",
}
#: State-changing endpoints without a role check, and why.
NO_ROLE: dict[str, str] = {
    "auth.login": "signing in is what an anonymous caller does (CSRF token, throttled)",
    **{endpoint: f"a machine caller, proven by {proof}" for endpoint, proof in CSRF_EXEMPT.items()},
}

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
    """Flask's signed-cookie session, with ``Secure`` set whenever the request is HTTPS.

    The instance's secret is loaded (made on first use) when the first session is opened, so
    building the app for a read-only command creates nothing.
    """

    def open_session(self, app: Flask, request: Any) -> Any:  # type: ignore[override]
        ensure_secret_key(app)
        return super().open_session(app, request)

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


def _invisible(char: str) -> bool:
    # Browsers drop tabs and newlines anywhere in a URL and strip leading controls and spaces,
    # so ``/\t/evil.example`` becomes ``//evil.example``; such characters are refused outright.
    return char.isspace() or not char.isprintable() or unicodedata.category(char) == "Cf"


def same_site_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site (``/gaps?status=open``), else None.

    Refused: empty, anything with a scheme or host, a start other than a single ``/``
    (``//host`` and ``/\\host`` are protocol-relative to browsers), any backslash, and any
    whitespace, control or format character (browsers drop or strip them, which could turn
    what we checked into ``//host``).

    :param target: the requested redirect target, as the request sent it
    """
    if not target or len(target) > 2048:
        return None
    if "\\" in target or any(_invisible(char) for char in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
