"""Sans-I/O wire formats shared by the agent and the collector.

Nothing in this package performs I/O, reads a clock or sleeps: bytes go in, events come
out, and time is passed in by the caller (docs/architecture.md §2, docs/architecture.md §9).
"""
