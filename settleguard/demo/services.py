"""The demo's running parts: a broker, the collector's ingest worker and its web server.

The broker is a real Mosquitto with our generated configuration (per-agent passwords, ACL,
``set_tcp_nodelay``) when the binary is installed, else amqtt inside this process (MQTT 3.1.1
only, anonymous: fine for a demo, never for production), else whatever ``--broker`` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from settleguard.collector.enrollment import broker as broker_config
from settleguard.collector.enrollment.broker import accepts as _accepts
from settleguard.collector.enrollment.broker import free_port


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until truthy; raise TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Broker:
    """A broker the demo started (or was given)."""

    kind: str  # "mosquitto", "amqtt" or "external"
    host: str
    port: int
    protocol: str  # "5" or "3.1.1"
    collector_user: str
    collector_password: str
    password_file: Path | None = None
    pid_file: Path | None = None
    _stop: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def url(self) -> str:
        """``mqtt://host:port``."""
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop the broker if the demo started it."""
        self._stop()


def start_broker(workdir: Path, external: str | None) -> Broker:
    """Start the demo's broker: ``external`` URL, else Mosquitto, else amqtt in-process.

    ``external == "embedded"`` forces the in-process amqtt broker even where Mosquitto exists.
    """
    if external == "embedded":
        return _start_amqtt()
    if external:
        parts = urlsplit(external)
        return Broker(
            "external",
            parts.hostname or "127.0.0.1",
            parts.port or 1883,
            "5",
            parts.username or "collector",
            parts.password or "",
        )
    binary = broker_config.mosquitto_binary()
    if binary:
        return _start_mosquitto(binary, workdir / "broker")
    return _start_amqtt()


def _start_mosquitto(binary: str, directory: Path) -> Broker:
    port = free_port()
    password = broker_config.new_password()
    pid_file = (directory / "mosquitto.pid").resolve()
    run_as = pwd.getpwuid(os.getuid()).pw_name if os.getuid() == 0 else None
    files = broker_config.write_broker_config(
        directory,
        port=port,
        collector_password_hash=broker_config.hash_password(password),
        pid_file=pid_file,
        run_as=run_as,
    )
    try:
        process = broker_config.start_mosquitto(files.config, port)
    except broker_config.BrokerStartError as exc:
        raise RuntimeError(str(exc)) from exc

    def stop() -> None:
        broker_config.stop_process(process)

    return Broker(
        "mosquitto",
        "127.0.0.1",
        port,
        "5",
        "collector",
        password,
        files.password_file,
        pid_file,
        stop,
    )


def _start_amqtt() -> Broker:
    from amqtt.broker import Broker as AmqttBroker  # pure-Python fallback (docs/architecture.md §7)

    port = free_port()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    loop = asyncio.new_event_loop()
    broker = AmqttBroker(config, loop=loop)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(broker.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="amqtt", daemon=True)
    thread.start()
    ready.wait(15)
    wait_for(lambda: _accepts(port), 15, "amqtt to listen")

    def stop() -> None:
        # amqtt cancels its own client tasks on shutdown and logs each cancellation.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return Broker("amqtt", "127.0.0.1", port, "3.1.1", "collector", "", None, None, stop)


@dataclass
class WebServer:
    """The collector's Flask app under waitress, in a thread."""

    url: str
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        """Close the listening socket and end the thread."""
        self._server.task_dispatcher.shutdown()
        self._server.close()
        self._thread.join(10)


def start_web(app: Any, port: int = 0, host: str = "127.0.0.1") -> WebServer:
    """Serve ``app`` with waitress (the production server, not Flask's) on ``host:port``."""
    import waitress.server

    try:
        server = waitress.server.create_server(
            app, host=host, port=port, threads=8, ident="settleguard"
        )
    except OSError:
        if port == 0:
            raise
        # The wanted port is taken (another demo, another service): any free port will do.
        server = waitress.server.create_server(
            app, host=host, port=0, threads=8, ident="settleguard"
        )

    def run() -> None:
        # close() from another thread pulls the socket out from under waitress's select():
        # the EBADF that follows is how its loop ends here, not a failure.
        with contextlib.suppress(OSError, ValueError):
            server.run()

    thread = threading.Thread(target=run, name="web", daemon=True)
    thread.start()
    return WebServer(f"http://{host}:{server.effective_port}", server, thread)
