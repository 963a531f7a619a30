"""Byte transports for simulated terminals: a pseudo-terminal or any pyserial URL.

The simulator is the terminal side of the link, so it owns the pty master; the agent opens the
slave path like any serial port. Fault injection that concerns raw bytes (random write splits,
line noise, a stall mid-frame) lives in :class:`FaultyWriter` so both protocols share it.
"""

from __future__ import annotations

import os
import random
import select
import socket
import termios
import time
import tty
from typing import Protocol

from settleguard.simulator.scenario import Misbehaviour


class Transport(Protocol):
    """Minimal duplex byte stream."""

    def read(self, timeout: float) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class PtyTransport:
    """The master side of a fresh pseudo-terminal pair; :attr:`path` is the slave to open."""

    def __init__(self) -> None:
        self.master_fd, slave_fd = os.openpty()
        tty.setraw(slave_fd)
        attrs = termios.tcgetattr(slave_fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave_fd, termios.TCSANOW, attrs)
        self.path = os.ttyname(slave_fd)
        # Keep our slave fd open so the pty survives while the agent closes and reopens it.
        self._slave_fd = slave_fd

    def read(self, timeout: float) -> bytes:
        """Return what arrived within ``timeout`` seconds (may be empty)."""
        ready, _, _ = select.select([self.master_fd], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.master_fd, 4096)
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        view = memoryview(data)
        while view:
            written = os.write(self.master_fd, view)
            view = view[written:]

    def close(self) -> None:
        """Close both ends."""
        for fd in (self.master_fd, self._slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class SerialTransport:
    """A simulator on a real port or pyserial URL (e.g. a null-modem cable to the agent)."""

    def __init__(self, url: str, baudrate: int = 9600, stopbits: float = 1) -> None:
        import serial

        self._port = serial.serial_for_url(url, baudrate=baudrate, stopbits=stopbits, timeout=0)
        self.path = url

    def read(self, timeout: float) -> bytes:
        """Return what arrived within ``timeout`` seconds (may be empty)."""
        self._port.timeout = timeout
        return bytes(self._port.read(max(1, self._port.in_waiting)))

    def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        self._port.write(data)
        self._port.flush()

    def close(self) -> None:
        """Close the port."""
        self._port.close()


class FaultyWriter:
    """Writes frames through a transport, injecting the byte-level faults of a scenario."""

    def __init__(self, transport: Transport, misbehaviour: Misbehaviour) -> None:
        self._transport = transport
        self._faults = misbehaviour
        self._random = random.Random(misbehaviour.seed)

    def write_frame(self, frame: bytes) -> None:
        """Send one frame, perhaps with noise before it, split or stalled in the middle."""
        faults = self._faults
        if faults.line_noise and self._random.random() < faults.line_noise:
            self._transport.write(bytes([self._random.choice((0x00, 0x55, 0xFF, 0x7E))]))
        if faults.stall_mid_frame_s and len(frame) > 2:
            middle = len(frame) // 2
            self._write(frame[:middle])
            time.sleep(faults.stall_mid_frame_s)  # the fault itself: a real stall on the line
            faults.stall_mid_frame_s = 0.0
            self._write(frame[middle:])
            return
        self._write(frame)

    def write_raw(self, data: bytes) -> None:
        """Send control bytes (ACK/NAK) unaltered but for write splitting."""
        self._write(data)

    def _write(self, data: bytes) -> None:
        if not self._faults.split_writes or len(data) < 2:
            self._transport.write(data)
            return
        start = 0
        while start < len(data):
            size = self._random.randint(1, max(1, len(data) - start))
            self._transport.write(data[start : start + size])
            start += size


class SocketTransport:
    """One accepted TCP connection (ZVT over TCP/IP); :attr:`closed` once the peer hangs up."""

    def __init__(self, connection: socket.socket) -> None:
        self._socket = connection
        self.closed = False

    def read(self, timeout: float) -> bytes:
        """Return what arrived within ``timeout`` seconds (may be empty)."""
        if self.closed:
            return b""
        ready, _, _ = select.select([self._socket], [], [], timeout)
        if not ready:
            return b""
        try:
            data = self._socket.recv(4096)
        except OSError:
            data = b""
        if not data:
            self.closed = True
        return data

    def write(self, data: bytes) -> None:
        """Write all of ``data`` (dropped silently once the peer has gone)."""
        if self.closed:
            return
        try:
            self._socket.sendall(data)
        except OSError:
            self.closed = True

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        self._socket.close()
