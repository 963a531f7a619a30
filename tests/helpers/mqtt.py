"""A small synchronous paho-mqtt 2.x test client that records what it receives.

``probe = MqttProbe.connect(port, "agent-a", "pw")``; ``probe.connected`` says whether the broker
accepted the login; ``probe.messages`` collects ``(topic, payload)``; ``probe.wait_for(pred)``
waits on a condition with a timeout.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers.mosquitto import wait_until


class MqttProbe:
    """A connected (or refused) MQTT v5 client."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.port = port
        self.messages: list[tuple[str, bytes]] = []
        self.connect_reason: Any = None
        self.suback: list[Any] | None = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"probe-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connect_reason = reason

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        self.suback = reasons

    @classmethod
    def connect(cls, port: int, username: str | None, password: str | None) -> MqttProbe:
        """Connect and wait for CONNACK (or the broker closing the connection)."""
        probe = cls(port, username, password)
        probe.client.connect("127.0.0.1", port)
        probe.client.loop_start()
        wait_until(lambda: probe.connect_reason is not None, what="CONNACK")
        return probe

    @property
    def connected(self) -> bool:
        return self.connect_reason is not None and not self.connect_reason.is_failure

    def subscribe(self, topic: str) -> list[Any]:
        """Subscribe at QoS 1 and return the SUBACK reason codes."""
        self.suback = None
        self.client.subscribe(topic, qos=1)
        return wait_until(lambda: self.suback, what="SUBACK")  # type: ignore[no-any-return]

    def publish(self, topic: str, payload: bytes) -> Any:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=10)
        return info

    def wait_for(
        self, predicate: Callable[[list[tuple[str, bytes]]], bool], timeout: float = 10
    ) -> None:
        """Wait until ``predicate(messages)`` holds."""

        def check() -> bool:
            with self._lock:
                return predicate(list(self.messages))

        wait_until(check, timeout=timeout, what="MQTT messages")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
