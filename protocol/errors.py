"""Error types shared by every codec and state machine in :mod:`protocol`.

Following h11, an error says *who* broke the rules:

* :class:`LocalProtocolError` -- our own code asked for something the protocol forbids
  (sending an event in the wrong state, an amount that does not fit a field).
* :class:`RemoteProtocolError` -- the peer sent bytes that break the protocol. It carries the
  byte ``offset`` (within the buffer or frame being parsed) where the problem was found, so
  that logs and technicians can point at it.

Boundaries translate them: the agent NAKs and resynchronises, the collector answers 400,
the CLI prints one line and exits non-zero.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error raised by :mod:`protocol`.

    :param message: what went wrong, in words a technician can act on
    :param offset: byte offset where the problem was detected, if known
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.message = message
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at byte offset {offset})")


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""
