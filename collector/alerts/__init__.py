"""Alerts: a gap becomes one well-formed SMS per stage, tracked to delivery (DESIGN.md §5).

Library first: :mod:`.encoding` (GSM-7/UCS-2 segmentation), :mod:`.templates` (zh-CN/en texts),
:mod:`.policy` (when to alert, state machine, quiet hours, limits), :mod:`.outbox` (the
``AlertStore`` interface, its SQLite implementation and the dispatcher) and the gateways
(:func:`.gateway.gateway_from_url`). :mod:`.cli` is a thin click wrapper.
"""
