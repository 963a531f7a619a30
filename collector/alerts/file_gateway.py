"""``file:///path`` gateway: one JSON line per message, for development and the demo."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from settleguard.collector.alerts.encoding import segment
from settleguard.collector.alerts.gateway import (
    DeliveryReceipt,
    GatewayConfigError,
    GatewayUnavailable,
    SendResult,
    TemplateCall,
)


class FileGateway:
    """Appends ``{"to","text","parts","encoding","ref","at","id"}`` lines to a file.

    Every message counts as delivered at once (a receipt is queued), so the demo shows the
    whole state machine. The file is the record: :meth:`lookup` finds a message by reference.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._receipts: list[DeliveryReceipt] = []

    @classmethod
    def from_url(cls, url: str) -> FileGateway:
        """Build from ``file:///absolute/path``."""
        parts = urlsplit(url)
        if not parts.path:
            raise GatewayConfigError("file:// SMS URL needs a path, e.g. file:///tmp/sms.jsonl")
        return cls(Path(unquote(parts.path)))

    def send(
        self, to: str, text: str, *, client_ref: str, template: TemplateCall | None = None
    ) -> SendResult:
        """Write the message as one JSON line (fsynced) and return its id."""
        seg = segment(text)
        message_id = f"file-{client_ref}"
        line = {
            "to": to,
            "text": text,
            "parts": seg.part_count,
            "encoding": seg.encoding,
            "ref": client_ref,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "id": message_id,
        }
        if template is not None:
            line["template"] = template.name
            line["params"] = dict(template.params)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
                self._receipts.append(DeliveryReceipt(message_id, "delivered"))
        except OSError as exc:
            raise GatewayUnavailable(f"cannot write SMS file {self.path}: {exc.strerror}") from exc
        return SendResult((message_id,), seg.part_count, seg.encoding)

    def poll_receipts(self) -> list[DeliveryReceipt]:
        """Receipts for messages written since the last call (all delivered)."""
        with self._lock:
            receipts, self._receipts = self._receipts, []
        return receipts

    def lookup(self, client_ref: str) -> SendResult | None:
        """Find a message already written with *client_ref* (used after a crash)."""
        if not self.path.exists():
            return None
        with self.path.open(encoding="utf-8") as lines:
            for raw in lines:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue  # a torn last line from a crash mid-write is not a send
                if isinstance(entry, dict) and entry.get("ref") == client_ref:
                    return SendResult((str(entry["id"]),), int(entry.get("parts", 1)))
        return None

    def close(self) -> None:
        """Nothing to release."""
