"""Serve the collector app with a production WSGI server (waitress), not Flask's dev server.

Waitress is pure Python, runs on every platform we support and serves many requests at
once with a thread pool (the SQLite store keeps one connection per thread; PostgreSQL uses
its pool). Put TLS in front (nginx, a load balancer) and name it with ``--trusted-proxy`` so
``X-Forwarded-Proto: https`` marks the session cookie ``Secure``.
"""

from __future__ import annotations

from flask import Flask


def serve(
    app: Flask,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 8,
    trusted_proxy: str | None = None,
) -> None:
    """Run ``app`` under waitress until interrupted.

    :param host: address to listen on
    :param port: TCP port (0: any free port)
    :param threads: request worker threads
    :param trusted_proxy: address of a reverse proxy whose ``X-Forwarded-*`` headers we trust
    """
    import waitress

    options: dict[str, object] = {
        "host": host,
        "port": port,
        "threads": threads,
        "ident": "settleguard",
    }
    if trusted_proxy:
        options.update(
            trusted_proxy=trusted_proxy,
            trusted_proxy_headers={"x-forwarded-proto", "x-forwarded-for", "x-forwarded-host"},
            clear_untrusted_proxy_headers=True,
        )
    waitress.serve(app, **options)
