"""ZVT (VDTH ECR interface, PA00P015/PA00P016), sans-I/O: transport, APDU codec, flows.

Layers, bottom up: :mod:`~protocol.zvt.transport` (serial block protocol or bare TCP/IP APDUs),
:mod:`~protocol.zvt.apdu` and :mod:`~protocol.zvt.tlv` (codecs),
:mod:`~protocol.zvt.messages` (typed commands), :mod:`~protocol.zvt.connection` (the
cash-register and terminal state machines).
"""
