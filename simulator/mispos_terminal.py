"""A simulated 通联-style MIS-POS terminal: answers settlement (14), its reprint (19) and the
port probe (MANAGER 07) from a scenario, over :class:`protocol.mispos.TerminalConnection`.

Faults from the scenario: requests ignored (``drop_acks``: no answer, nothing done), silence before the settlement reply (the host transfer), split
writes and line noise (:class:`simulator.transport.FaultyWriter`), damaged replies (a flipped
LRC: the register must recover with 19, as settling again would close the next batch), and a
refusal with a 9F14 code and 9F19 text. Scenario buckets with China names are reported as
they are; ZVT-style names (``girocard`` …) are reported under their China bucket.
"""

from __future__ import annotations

import threading
from datetime import datetime

from settleguard.protocol.buckets import add_up, china_bucket
from settleguard.protocol.errors import RemoteProtocolError
from settleguard.protocol.mispos import (
    PROBE_APP,
    TYPE_PROBE,
    TYPE_REPRINT_SETTLEMENT,
    TYPE_SETTLEMENT,
    Reply,
    Request,
    RequestReceived,
    SlipRow,
    TerminalConnection,
    settlement_reply,
)
from settleguard.protocol.mispos.messages import (
    TAG_APP,
    TAG_RESULT,
    TAG_RESULT_TEXT,
    TAG_TERMINAL_NO,
    TAG_TYPE,
)
from settleguard.protocol.mispos.settlement import error_reply
from settleguard.simulator.scenario import Scenario, ScenarioBucket
from settleguard.simulator.transport import FaultyWriter, Transport

MERCHANT_NAME = "上海静安小面馆"


def china_scenario() -> Scenario:
    """A Shanghai shop's open batch: the default of ``sim terminal --protocol mispos``."""
    return Scenario(
        terminal_id="10060001",
        merchant_id="898310048160001",
        currency="156",
        batch_no=123,
        buckets=[
            ScenarioBucket("domestic_debit", 4, 152300),
            ScenarioBucket("domestic_credit", 3, 98750),
            ScenarioBucket("foreign", 1, 20000),
            ScenarioBucket("unionpay_qr", 5, 6480),
        ],
    )


def scenario_rows(scenario: Scenario) -> tuple[SlipRow, ...]:
    """The open batch per China bucket (sales net of refunds, as the slip prints them)."""
    sums = add_up(
        (china_bucket("zvt", b.name), (b.count + b.refund_count, b.amount - b.refund_amount))
        for b in scenario.buckets
    )
    return tuple(SlipRow(name, count, amount) for name, (count, amount) in sums.items() if count)


class MisposTerminal:
    """The terminal's answers; keeps the last settlement for the reprint."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.last_settlement: Reply | None = None

    def answer(self, request: Request) -> Reply:
        """The reply to ``request`` (14 closes the scenario's batch)."""
        faults = self.scenario.misbehaviour
        if faults.result_code is not None:
            reply = error_reply(
                faults.result_code, faults.result_text, trans_type=request.trans_type
            )
            faults.result_code = faults.result_text = None
            return reply
        if request.trans_type == TYPE_PROBE and request.app == PROBE_APP:
            return Reply(
                (
                    (TAG_APP, PROBE_APP.encode()),
                    (TAG_TYPE, bytes([TYPE_PROBE])),
                    (TAG_RESULT, b"00"),
                    (TAG_RESULT_TEXT, "交易成功".encode("gbk")),
                    (TAG_TERMINAL_NO, self.scenario.terminal_id.encode()),
                )
            )
        if request.trans_type == TYPE_SETTLEMENT:
            return self._settle(request)
        if request.trans_type == TYPE_REPRINT_SETTLEMENT:
            if self.last_settlement is None:
                return error_reply("X2", "无结算记录")
            return self.last_settlement
        return error_reply("XA", trans_type=request.trans_type)

    def _settle(self, request: Request) -> Reply:
        scenario = self.scenario
        rows = scenario_rows(scenario)
        common = {
            "merchant_no": scenario.merchant_id,
            "terminal_id": scenario.terminal_id,
            "batch_no": scenario.batch_no,
            "rows": rows,
            "when": datetime.now().replace(microsecond=0),
            "merchant_name": MERCHANT_NAME,
            "app": request.app,
        }
        reply = settlement_reply(**common)  # type: ignore[arg-type]
        self.last_settlement = settlement_reply(**common, duplicated=True)  # type: ignore[arg-type]
        scenario.close_batch()
        return reply


def serve_mispos(transport: Transport, scenario: Scenario, stop_event: threading.Event) -> None:
    """Serve MIS-POS on ``transport`` until ``stop_event`` is set."""
    faults = scenario.misbehaviour
    writer = FaultyWriter(transport, faults)
    conn = TerminalConnection()
    terminal = MisposTerminal(scenario)
    while not stop_event.is_set():
        conn.receive_data(transport.read(0.02))
        try:
            event = conn.next_event()
        except RemoteProtocolError:
            continue  # a damaged request gets no answer, as on a real terminal
        if not isinstance(event, RequestReceived):
            continue
        if faults.drop_acks > 0:
            faults.drop_acks -= 1  # as if the request never arrived: no answer, nothing done
            conn = TerminalConnection()
            continue
        reply = terminal.answer(event.request)
        if event.request.trans_type == TYPE_SETTLEMENT and faults.eod_silence_s:
            # The host transfer: silent, but stop_event keeps shutdown prompt.
            stop_event.wait(faults.eod_silence_s)
            faults.eod_silence_s = 0.0
        frame = conn.send(reply)
        if faults.corrupt_replies > 0:
            faults.corrupt_replies -= 1
            frame = frame[:-1] + bytes([frame[-1] ^ 0x5A])
        writer.write_frame(frame)
