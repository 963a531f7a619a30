"""Errors the agent reports to a technician, each with a documented exit code.

The CLI prints ``error: <message>`` on one line and exits with ``exit_code``; scripts can
branch on it. Keep the table in ``docs/technician.md`` in step with this module.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class: a failure the technician can act on.

    :param message: one line, saying what happened and what to do
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class UsageError(AgentError):
    """Bad command-line input or configuration."""

    exit_code = 2


class PortNotFound(AgentError):
    """The serial port or URL does not exist."""

    exit_code = 3


class PortPermissionDenied(AgentError):
    """The port exists but this user may not open it (usually: not in group ``dialout``)."""

    exit_code = 4


class PortBusy(AgentError):
    """Another process holds the port (ModemManager, a second agent, a terminal program)."""

    exit_code = 5


class NoAnswer(AgentError):
    """The terminal did not answer in time (cable, baud rate, stop bits, ECR mode off)."""

    exit_code = 6


class LinkFailure(AgentError):
    """The link layer gave up: repeated NAKs, bad checksums, lost acknowledgements."""

    exit_code = 7


class TerminalAborted(AgentError):
    """The terminal refused or aborted the command and said why.

    :param result_code: the protocol's result code (ZVT ``06 1E`` byte, POSLink code)
    """

    exit_code = 8

    def __init__(self, message: str, result_code: int | str | None = None) -> None:
        super().__init__(message)
        self.result_code = result_code


class TerminalProtocolError(AgentError):
    """The terminal sent something the protocol does not allow."""

    exit_code = 9


class StorageError(AgentError):
    """The agent's outbox could not be written (disk full, read-only, budget reached)."""

    exit_code = 10


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected error (a bug: please report it with the log)",
    2: UsageError.__doc__ or "",
    3: PortNotFound.__doc__ or "",
    4: PortPermissionDenied.__doc__ or "",
    5: PortBusy.__doc__ or "",
    6: NoAnswer.__doc__ or "",
    7: LinkFailure.__doc__ or "",
    8: "The terminal refused or aborted the command and said why.",
    9: TerminalProtocolError.__doc__ or "",
    10: StorageError.__doc__ or "",
}


class SyncError(AgentError):
    """The broker could not be reached or refused the agent (credentials, ACL, TLS)."""

    exit_code = 11


class EnrollmentError(AgentError):
    """The collector refused the enrollment (bad or used token, revoked key)."""

    exit_code = 12


EXIT_CODES[11] = SyncError.__doc__ or ""
EXIT_CODES[12] = EnrollmentError.__doc__ or ""


class CollectorUnreachable(AgentError):
    """The collector could not be reached; the request is kept and ``run`` retries it."""

    exit_code = 13


EXIT_CODES[13] = CollectorUnreachable.__doc__ or ""
