"""MIS-POS register link, Allinpay (通联) style, sans-I/O: framing, TLV body, slip, both roles.

Layers, bottom up: :mod:`~protocol.mispos.framing` (STX, BCD length, ETX, LRC),
:mod:`~protocol.mispos.tlv` (the 2-byte-tag TLV body), :mod:`~protocol.mispos.messages`
(requests and replies, transaction types, result codes), :mod:`~protocol.mispos.slip` (the
per-card-type rows of the GBK settlement slip), :mod:`~protocol.mispos.settlement` (a
settlement reply as batch totals) and :mod:`~protocol.mispos.connection` (the register and
terminal state machines). ``docs/mispos.md`` says which facts are confirmed and which assumed.
"""

from .connection import (
    EcrConnection,
    EcrState,
    ReplyReceived,
    RequestReceived,
    TerminalConnection,
    TerminalState,
    TimedOut,
)
from .framing import FrameDecoder, encode_frame, lrc
from .messages import (
    PROBE_APP,
    TYPE_HOST_RELAY,
    TYPE_PROBE,
    TYPE_REPRINT_SETTLEMENT,
    TYPE_SETTLEMENT,
    Reply,
    Request,
    describe_result,
)
from .settlement import (
    HostRelayRefused,
    Settlement,
    SettlementRefused,
    settlement_from_reply,
    settlement_reply,
)
from .slip import SlipError, SlipRow, parse_slip, render_slip

__all__ = [
    "PROBE_APP",
    "TYPE_HOST_RELAY",
    "TYPE_PROBE",
    "TYPE_REPRINT_SETTLEMENT",
    "TYPE_SETTLEMENT",
    "EcrConnection",
    "EcrState",
    "FrameDecoder",
    "HostRelayRefused",
    "Reply",
    "ReplyReceived",
    "Request",
    "RequestReceived",
    "Settlement",
    "SettlementRefused",
    "SlipError",
    "SlipRow",
    "TerminalConnection",
    "TerminalState",
    "TimedOut",
    "describe_result",
    "encode_frame",
    "lrc",
    "parse_slip",
    "render_slip",
    "settlement_from_reply",
    "settlement_reply",
]
