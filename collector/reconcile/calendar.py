"""Working-day calendars loaded from TOML data files.

A calendar knows weekends, public holidays and adjusted working weekends (调休上班). The shipped
``calendars/cn.toml`` covers mainland China for 2025-2026; a user replaces it by pointing
``SETTLEGUARD_CALENDAR`` at another file in the same format, or by passing a path to
:func:`load_calendar`. Outside the file's ``valid_from``..``valid_to`` range only weekends count
as rest days, and :meth:`WorkingCalendar.covers` says so.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DEFAULT_CALENDAR = Path(__file__).with_name("calendars") / "cn.toml"
#: ``collector reconcile`` and the dashboard warn this many days before a calendar ends
WARN_DAYS = 45
_ONE_DAY = timedelta(days=1)


class CalendarError(ValueError):
    """A calendar file is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Rest days and working days; lookups are memoised per date."""

    name: str
    valid_from: date
    valid_to: date
    weekend: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]
    _next_cache: dict[date, date] = field(default_factory=dict, repr=False, compare=False)
    #: Scratch space for lookups that depend on this calendar, memoised by their users (the
    #: engine keeps its business/due-date tables here so every merchant of a run shares them).
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def covers(self, day: date) -> bool:
        """True when ``day`` lies in the range the file describes."""
        return self.valid_from <= day <= self.valid_to

    def ending_soon(self, today: date) -> int | None:
        """Days left until ``valid_to`` when fewer than :data:`WARN_DAYS` (or it has passed)."""
        left = (self.valid_to - today).days
        return left if left < WARN_DAYS else None

    def is_working_day(self, day: date) -> bool:
        """True when banks settle on ``day``."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.isoweekday() not in self.weekend

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        cached = self._next_cache.get(day)
        if cached is not None:
            return cached
        candidate = day + _ONE_DAY
        while not self.is_working_day(candidate):
            candidate += _ONE_DAY
        self._next_cache[day] = candidate
        return candidate

    def on_or_after(self, day: date) -> date:
        """``day`` itself when it is a working day, else the next working day."""
        return day if self.is_working_day(day) else self.next_working_day(day)

    def add_working_days(self, day: date, count: int) -> date:
        """The working day ``count`` working days after ``day`` (``count`` >= 0).

        :raises ValueError: when ``count`` is negative
        """
        if count < 0:
            raise ValueError(f"add_working_days: count {count} is negative")
        for _ in range(count):
            day = self.next_working_day(day)
        return day


def next_working_day(calendar: WorkingCalendar, day: date) -> date:
    """Module-level spelling of :meth:`WorkingCalendar.next_working_day`."""
    return calendar.next_working_day(day)


def add_working_days(calendar: WorkingCalendar, day: date, count: int) -> date:
    """Module-level spelling of :meth:`WorkingCalendar.add_working_days`."""
    return calendar.add_working_days(day, count)


def calendar_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The file :func:`load_calendar` reads: ``path``, else ``$SETTLEGUARD_CALENDAR``, else the
    shipped China one."""
    return Path(path or os.environ.get("SETTLEGUARD_CALENDAR") or DEFAULT_CALENDAR)


def load_calendar(path: str | os.PathLike[str] | None = None) -> WorkingCalendar:
    """Load a calendar file: ``path``, else ``$SETTLEGUARD_CALENDAR``, else the shipped China one.

    :param path: a TOML file in the format of ``calendars/cn.toml``
    :raises CalendarError: when the file cannot be read or an entry is malformed
    """
    chosen = calendar_path(path)
    try:
        document = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalendarError(f"{chosen}: cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalendarError(f"{chosen}: not valid TOML: {exc}") from exc
    return parse_calendar(document, source=str(chosen))


def parse_calendar(document: dict[str, Any], *, source: str = "<calendar>") -> WorkingCalendar:
    """Build a calendar from a parsed TOML document.

    :raises CalendarError: naming ``source`` and the offending entry
    """
    head = document.get("calendar")
    if not isinstance(head, dict):
        raise CalendarError(f"{source}: missing [calendar] table")
    valid_from = _date(head.get("valid_from"), source, "[calendar].valid_from")
    valid_to = _date(head.get("valid_to"), source, "[calendar].valid_to")
    if valid_to < valid_from:
        raise CalendarError(f"{source}: [calendar] valid_to is before valid_from")
    weekend = head.get("weekend", [6, 7])
    if not isinstance(weekend, list) or not all(
        isinstance(d, int) and 1 <= d <= 7 for d in weekend
    ):
        raise CalendarError(f"{source}: [calendar].weekend must list ISO weekdays 1..7")
    holidays: set[date] = set()
    for index, entry in enumerate(_tables(document, "holiday", source)):
        where = f"[[holiday]] #{index + 1}"
        start = _date(entry.get("from"), source, where + ".from")
        end = _date(entry.get("to", entry.get("from")), source, where + ".to")
        if end < start or (end - start).days > 31:
            raise CalendarError(f"{source}: {where}: range {start}..{end} is not 0..31 days")
        holidays.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    workdays = {
        _date(entry.get("date"), source, f"[[workday]] #{index + 1}.date")
        for index, entry in enumerate(_tables(document, "workday", source))
    }
    clash = holidays & workdays
    if clash:
        raise CalendarError(f"{source}: {min(clash)} is both a holiday and a workday")
    return WorkingCalendar(
        name=str(head.get("name", source)),
        valid_from=valid_from,
        valid_to=valid_to,
        weekend=frozenset(weekend),
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
    )


def _tables(document: dict[str, Any], name: str, source: str) -> list[dict[str, Any]]:
    entries = document.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CalendarError(f"{source}: {name} must be an array of tables ([[{name}]])")
    return entries


def _date(value: object, source: str, where: str) -> date:
    # tomllib gives datetime for offset/local date-times; only a bare local date is accepted.
    if type(value) is not date:
        raise CalendarError(f"{source}: {where} must be a TOML date (YYYY-MM-DD), got {value!r}")
    return value
