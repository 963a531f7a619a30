"""TLS for the MQTT link: the client context, and plain words for what went wrong.

Theory of operation
-------------------
``mqtts://`` brokers are verified against ``[broker] ca_file`` (empty: the system CAs), with
hostname checking on (the certificate must name the host or IP address in the URL). A client
certificate (``cert_file``/``key_file``) is presented when configured; the username and
password from enrollment still log in (the broker's password file decides who connects).

Failures surface in three places, and each gets a message that says what to fix:

1. loading the files (:func:`client_context`): a missing or unreadable file, or a key that
   does not match the certificate, names the setting and the path (a configuration error);
2. the handshake, in ``connect()``: the broker's certificate does not verify against our CA or
   does not name the host (:func:`explain_handshake_error`);
3. after the handshake: with TLS 1.3 the broker checks *our* certificate after the client has
   finished its half of the handshake, so a missing or untrusted client certificate shows up
   only as the broker closing the connection before its CONNACK (typically "EOF occurred in
   violation of protocol"). :func:`explain_dropped` says which of the two is likely, and from
   which certificate (subject and issuer) we presented.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from settleguard.agent.errors import UsageError


class TlsFiles(Protocol):
    """The TLS settings of a broker target (:class:`agent.sync.BrokerTarget`)."""

    @property
    def ca_file(self) -> str: ...

    @property
    def cert_file(self) -> str: ...

    @property
    def key_file(self) -> str: ...


class ClientContext(ssl.SSLContext):
    """A client SSL context that remembers the last socket it wrapped.

    paho-mqtt 2.2 leaves the socket open when the handshake in ``connect()`` fails
    (``Client._ssl_wrap_socket``); :meth:`close_unfinished` closes it.
    """

    last_socket: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.last_socket = super().wrap_socket(*args, **kwargs)
        return self.last_socket

    def close_unfinished(self) -> None:
        """Close the socket of a failed handshake."""
        if self.last_socket is not None:
            self.last_socket.close()
            self.last_socket = None


def client_context(files: TlsFiles) -> ClientContext:
    """An SSL context that verifies the broker and presents our certificate, if any.

    Settings as :func:`ssl.create_default_context`: certificate and host name checked,
    ``ca_file`` or else the system CAs.

    :raises agent.errors.UsageError: naming the ``[broker]`` setting and file that failed
    """
    context = ClientContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode REQUIRED, check_hostname
    try:
        if files.ca_file:
            context.load_verify_locations(cafile=files.ca_file)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"[broker] ca_file {files.ca_file}: cannot load CA certificates: {exc}"
        ) from exc
    if files.key_file and not files.cert_file:
        raise UsageError("[broker] key_file is set but cert_file is not: set both or neither")
    if files.cert_file:
        try:
            context.load_cert_chain(files.cert_file, files.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            where = f"cert_file {files.cert_file}" + (
                f" / key_file {files.key_file}" if files.key_file else ""
            )
            raise UsageError(
                f"[broker] {where}: cannot load the client certificate and key: {exc}"
            ) from exc
    return context


def explain_handshake_error(exc: ssl.SSLError, where: str, files: TlsFiles) -> str:
    """One line for a failed TLS handshake with the broker at ``where`` (``host:port``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        trusted = f"ca_file {files.ca_file}" if files.ca_file else "the system CAs"
        reason = exc.verify_message or str(exc)
        return (
            f"TLS: broker {where} presented a certificate that does not verify against "
            f"{trusted}: {reason} (check [broker] ca_file and the host name in the URL)"
        )
    return f"TLS handshake with broker {where} failed: {exc}"


def describe_certificate(path: str) -> str:
    """``subject CN=…, issued by CN=…`` of a PEM certificate, or ``""`` if unreadable."""
    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError):
        return ""
    return f"subject {cert.subject.rfc4514_string()}, issued by {cert.issuer.rfc4514_string()}"


# TLS alerts by which a broker refuses a client certificate (when they reach us in time).
_CERT_REFUSED_ALERTS = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "ACCESS_DENIED")


def explain_dropped(where: str, files: TlsFiles, socket_error: str | None) -> str:
    """One line for a TLS connection the broker closed before its CONNACK.

    Definite when the broker's TLS alert reached us (``certificate required``, ``unknown
    ca``…); otherwise ("EOF", the alert lost to the closed socket) the likely cause for the
    certificate we did or did not present.
    """
    seen = f" ({socket_error})" if socket_error else ""
    alert = (socket_error or "").upper()
    sure = "CERTIFICATE_REQUIRED" in alert or any(a in alert for a in _CERT_REFUSED_ALERTS)
    likely = "" if sure else "most likely "
    if not files.cert_file:
        return (
            f"TLS: broker {where} closed the connection before accepting us{seen}: it "
            f"{likely}requires a client certificate; set [broker] cert_file and key_file"
        )
    described = describe_certificate(files.cert_file)
    return (
        f"TLS: broker {where} closed the connection before accepting us{seen}: it "
        f"{likely}does not trust our client certificate {files.cert_file}"
        + (f" ({described})" if described else "")
        + "; it must be issued by a CA in the broker's cafile"
    )
