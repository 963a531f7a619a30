"""PAX POSLink: framing, messages (B00/B01, R00/R01, R02/R03) and both link roles, sans-I/O.

Field positions and their public sources are in :mod:`protocol.poslink.fields`;
``firmware_notes/pax-poslink.md`` explains what is confirmed and what is not.
"""

from .connection import (
    NEED_DATA,
    Acknowledged,
    EcrConnection,
    FrameRejected,
    LinkFailed,
    PeerGaveUp,
    PosLinkTimers,
    ResponseTimedOut,
    Retransmitted,
    State,
    TerminalConnection,
)
from .fields import FIELDS, RESPONSE_CODES, describe_response
from .framing import FrameDecoder, encode_frame, lrc
from .messages import (
    BatchCloseRequest,
    BatchCloseResponse,
    EdcTotal,
    HostInformation,
    JournalEntry,
    LocalDetailReportRequest,
    LocalDetailReportResponse,
    LocalTotalReportRequest,
    LocalTotalReportResponse,
    ResponseStatus,
    decode_request,
    encode_request,
    mask_pan,
)
from .response_codec import decode_response, encode_response
from .totals import totals_from_batch_close, totals_from_report

__all__ = [
    "FIELDS",
    "NEED_DATA",
    "RESPONSE_CODES",
    "Acknowledged",
    "BatchCloseRequest",
    "BatchCloseResponse",
    "EcrConnection",
    "EdcTotal",
    "FrameDecoder",
    "FrameRejected",
    "HostInformation",
    "JournalEntry",
    "LinkFailed",
    "LocalDetailReportRequest",
    "LocalDetailReportResponse",
    "LocalTotalReportRequest",
    "LocalTotalReportResponse",
    "PeerGaveUp",
    "PosLinkTimers",
    "ResponseStatus",
    "ResponseTimedOut",
    "Retransmitted",
    "State",
    "TerminalConnection",
    "decode_request",
    "decode_response",
    "describe_response",
    "encode_frame",
    "encode_request",
    "encode_response",
    "lrc",
    "mask_pan",
    "totals_from_batch_close",
    "totals_from_report",
]
