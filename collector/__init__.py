"""The settleguard collector: ingest, statements, reconciliation, alerts and dashboard."""
