"""The shipped working calendar, as the demo tests need it."""

from __future__ import annotations

from datetime import date, timedelta

from settleguard.collector.reconcile import load_calendar


def calendar_covers_demo(today: date, days: int) -> bool:
    """True when the shipped calendar covers every day the demo's batches can fall due.

    After the calendar's last day, the demo's late gaps wait for it (their SMS are held), and
    the tests that count SMS must say so rather than fail on the date.
    """
    calendar = load_calendar()
    return calendar.covers(today - timedelta(days=days)) and calendar.covers(today)
