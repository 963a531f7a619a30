"""Tests of collector/ingest/."""
