"""Run a simulated terminal in a background thread, for the CLI, the tests and the demo."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from settleguard.simulator.scenario import Scenario
from settleguard.simulator.transport import PtyTransport, Transport

ServeFunction = Callable[[Transport, Scenario, threading.Event], None]


def serve_function(protocol: str) -> ServeFunction:
    """The terminal-side loop for ``protocol`` (``zvt`` or ``poslink``)."""
    if protocol == "zvt":
        from settleguard.simulator.zvt_terminal import serve_zvt

        return serve_zvt
    if protocol == "poslink":
        from settleguard.simulator.poslink_terminal import serve_poslink

        return serve_poslink
    if protocol == "mispos":
        from settleguard.simulator.mispos_terminal import serve_mispos

        return serve_mispos
    raise ValueError(f"unknown protocol {protocol!r}; choose mispos, zvt or poslink")


@dataclass
class RunningSimulator:
    """A simulator serving on a transport until :meth:`stop` is called."""

    protocol: str
    scenario: Scenario
    transport: Transport
    path: str
    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end, wait for it, and close the transport."""
        self.stop_event.set()
        self.thread.join(timeout)
        self.transport.close()

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_on_pty(protocol: str, scenario: Scenario | None = None) -> RunningSimulator:
    """Start a simulated terminal on a fresh pseudo-terminal; ``.path`` is the port to open."""
    scenario = scenario or Scenario()
    transport = PtyTransport()
    return start(protocol, scenario, transport, transport.path)


def start(protocol: str, scenario: Scenario, transport: Transport, path: str) -> RunningSimulator:
    """Start serving ``scenario`` over ``transport`` in a daemon thread."""
    serve = serve_function(protocol)
    stop_event = threading.Event()
    thread = threading.Thread(
        target=serve, args=(transport, scenario, stop_event), name=f"sim-{protocol}", daemon=True
    )
    thread.start()
    return RunningSimulator(protocol, scenario, transport, path, thread, stop_event)
