"""Merchant SMS: a day's gaps become at most one approved-template SMS, tracked to delivery.

Library first (docs/alerts.md): :mod:`.templates` (fixed texts with typed variables) and
:mod:`.approval` (the sheet to register them, the approved codes), :mod:`.policy` (when to
alert, state machine, quiet hours, limits), :mod:`.planner` (gaps to one message per merchant
per day), :mod:`.store` (the alerts table), :mod:`.dispatcher` (send, receipts, escalation),
the gateways behind :class:`.gateway.SmsGateway` (Aliyun, Tencent Cloud, SMPP, Twilio, file)
and :mod:`.settings`. :mod:`.cli` is a thin click wrapper.
"""
