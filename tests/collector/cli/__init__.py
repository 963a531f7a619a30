"""Tests of collector/cli/."""
