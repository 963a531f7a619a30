"""Tests of collector/enrollment/."""
