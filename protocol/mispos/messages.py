"""MIS-POS requests and replies: the tags, transaction types and result codes we rely on.

Every request starts with 9F00 (the application key) and 9F01 (the transaction type, one
binary byte). A reply carries 9F01 as the type of the *original* transaction, 9F14 a
two-character result code (``00`` = success) and 9F19 its explanation in GBK. Text values are
GBK and may be space-padded. Facts and their sources: ``docs/mispos.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LocalProtocolError, RemoteProtocolError
from .tlv import Tlv, decode_tlvs, encode_tlvs

TAG_APP = 0x9F00
TAG_TYPE = 0x9F01
TAG_AMOUNT = 0x9F02
TAG_MERCHANT_NAME = 0x9F03
TAG_MERCHANT_NO = 0x9F04
TAG_TERMINAL_NO = 0x9F05
TAG_OPERATOR = 0x9F06
TAG_BATCH_NO = 0x9F0D
TAG_DATE = 0x9F11
TAG_TIME = 0x9F12
TAG_MEMO = 0x9F13
TAG_RESULT = 0x9F14
TAG_RESULT_TEXT = 0x9F19
TAG_CHECK = 0x9F1A
TAG_TOTAL = 0x9F1D

TYPE_SETTLEMENT = 14
TYPE_HOST_RELAY = 17
TYPE_REPRINT_SETTLEMENT = 19
TYPE_PROBE = 7
#: The application key of the port probe (9F00 ``MANAGER`` with type 07).
PROBE_APP = "MANAGER"
DEFAULT_APP = "APP01"

#: Result codes with short Chinese words, for when 9F19 is missing (the terminal's own text
#: in 9F19 is always shown first). Public Allinpay-style client code, gsccs/mispos-client,
#: result-code table.
RESULT_CODES: dict[str, str] = {
    "00": "交易成功",
    "12": "无效交易",
    "25": "无此记录",
    "30": "格式错误",
    "77": "请重新签到",
    "94": "重复交易",
    "95": "对账不平",
    "96": "系统故障",
    "97": "终端未登记",
    "98": "交易超时",
    "X0": "交易取消",
    "X1": "交易失败",
    "X2": "无此记录",
    "X3": "无交易",
    "X5": "连接失败",
    "X6": "发送失败",
    "X7": "接收失败",
    "X8": "接收失败",
    "XA": "不支持该交易",
    "XM": "交易拒绝",
}

ENCODING = "gbk"


def describe_result(code: str) -> str:
    """Words for a result code from our table, or ``未知应答码``."""
    return RESULT_CODES.get(code, "未知应答码")


def text_value(value: bytes) -> str:
    """A GBK text value, surrounding spaces trimmed; undecodable bytes become U+FFFD."""
    return value.decode(ENCODING, "replace").strip()


def encode_text(tag: int, text: str) -> Tlv:
    """``(tag, GBK bytes)``.

    :raises LocalProtocolError: ``text`` has characters GBK cannot encode
    """
    try:
        return (tag, text.encode(ENCODING))
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"tag {tag:04X}: not encodable as GBK") from exc


@dataclass(frozen=True, slots=True)
class Request:
    """What the register sends: application key, transaction type, further fields.

    :param extra: further ``(tag, value)`` pairs in wire order (operator 9F06, check 9F1A …)
    """

    trans_type: int
    app: str = DEFAULT_APP
    extra: tuple[Tlv, ...] = ()

    def __post_init__(self) -> None:
        if type(self.trans_type) is not int or not 0 <= self.trans_type <= 0xFF:
            raise LocalProtocolError("trans_type must fit one byte")
        if not self.app:
            raise LocalProtocolError("9F00 (application key) must not be empty")
        for tag, _ in self.extra:
            if tag in (TAG_APP, TAG_TYPE):
                raise LocalProtocolError(f"tag {tag:04X} is set by the request itself")

    def encode_body(self) -> bytes:
        """The TLV body: 9F00, 9F01, then :attr:`extra`."""
        head = (encode_text(TAG_APP, self.app), (TAG_TYPE, bytes([self.trans_type])))
        return encode_tlvs((*head, *self.extra))

    @classmethod
    def decode_body(cls, body: bytes) -> Request:
        """The inverse of :meth:`encode_body` (the terminal role).

        :raises RemoteProtocolError: 9F00 or 9F01 missing or malformed
        """
        items = decode_tlvs(body)
        values = dict(items)
        app, kind = values.get(TAG_APP), values.get(TAG_TYPE)
        if kind is None or len(kind) != 1:
            raise RemoteProtocolError("request has no one-byte 9F01 (transaction type)")
        app_text = text_value(app or b"")
        if not app_text:
            raise RemoteProtocolError("request has no 9F00 (application key)")
        extra = tuple(item for item in items if item[0] not in (TAG_APP, TAG_TYPE))
        return cls(kind[0], app_text, extra)

    def text(self, tag: int) -> str | None:
        """A text field of :attr:`extra`, or ``None``."""
        for item_tag, value in self.extra:
            if item_tag == tag:
                return text_value(value)
        return None


@dataclass(frozen=True, slots=True)
class Reply:
    """What the terminal answers: its TLVs in wire order (unknown tags kept, never needed)."""

    items: tuple[Tlv, ...]

    @classmethod
    def decode_body(cls, body: bytes) -> Reply:
        """Parse a reply body.

        :raises RemoteProtocolError: the TLV list is malformed
        """
        return cls(decode_tlvs(body))

    def encode_body(self) -> bytes:
        """The TLV body."""
        return encode_tlvs(self.items)

    def raw(self, tag: int) -> bytes | None:
        """The first value of ``tag``, or ``None``."""
        for item_tag, value in self.items:
            if item_tag == tag:
                return value
        return None

    def text(self, tag: int) -> str | None:
        """The first value of ``tag`` as trimmed GBK text, or ``None``."""
        value = self.raw(tag)
        return None if value is None else text_value(value)

    @property
    def trans_type(self) -> int | None:
        """9F01, the original transaction's type (one byte), if present."""
        value = self.raw(TAG_TYPE)
        return value[0] if value is not None and len(value) == 1 else None

    @property
    def result_code(self) -> str | None:
        """9F14, e.g. ``00`` or ``X3``."""
        return self.text(TAG_RESULT)

    @property
    def result_text(self) -> str:
        """9F19 as the terminal sent it, else the words of our table."""
        text = self.text(TAG_RESULT_TEXT)
        if text:
            return text
        return describe_result(self.result_code or "")
