"""Schedule triggers: when a cron or recurrence trigger fires (pure; no I/O).

A trigger is read in its ``time_zone`` (an IANA name such as ``Europe/Paris``; UTC when
omitted): ``0 9 * * *`` in ``America/New_York`` fires at 09:00 New York time, which is 14:00
UTC in winter and 13:00 UTC in summer. A ``start_time`` without an offset is a wall-clock time
in that zone. Fire times are returned as aware UTC datetimes.

Fires are the trigger's ticks at or after ``start_time`` and at or before ``end_time``. A
wall-clock time a DST change skips (02:30 on the spring-forward night) fires at the same
instant one hour later on the clock (zoneinfo's reading of it); one it repeats fires once, at
its first occurrence.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from shipyard.domain.errors import InvalidInputError

FREQUENCIES = ("minute", "hour", "day", "week", "month")
WEEK_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TRIGGER_TIME = "${{creation_context.trigger_time}}"
# How far ahead a recurrence is searched for its next fire (a month_days of [31] with an
# interval of 12 months may wait years; nothing sensible waits longer than this).
_HORIZON_DAYS = 366 * 10


@dataclass(frozen=True)
class Recurrence:
    frequency: str
    interval: int = 1
    hours: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    week_days: tuple[str, ...] = ()
    month_days: tuple[int, ...] = ()


@dataclass(frozen=True)
class Trigger:
    """A validated trigger: ``expression`` for cron, ``recurrence`` for recurrence."""

    start: datetime  # aware
    zone: ZoneInfo
    end: datetime | None = None  # aware
    expression: str | None = None
    recurrence: Recurrence | None = field(default=None)

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire strictly after ``after`` (and at or after the start); None past
        the end."""
        floor = max(after, self.start - timedelta(microseconds=1))
        found = next(self._fires_after(floor), None)
        if found is None or (self.end is not None and found > self.end):
            return None
        return found

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        out: list[datetime] = []
        current: datetime | None = after
        while len(out) < count and current is not None:
            current = self.next_fire(current)
            if current is not None:
                out.append(current)
        return out

    def _fires_after(self, after: datetime) -> Iterator[datetime]:
        if self.expression is not None:
            yield _cron_next(self.expression, after, self.zone)
        elif self.recurrence is not None:
            yield from _recurrence_after(self.recurrence, self.start, after, self.zone)


def check_time_zone(name: str | None, *, field: str = "trigger.time_zone") -> ZoneInfo:
    if name is None or name.upper() in ("UTC", "COORDINATED UNIVERSAL TIME"):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(
            f"time zone {name!r} is not known: use an IANA name such as 'Europe/Paris' or "
            "'America/New_York'",
            code="invalid_time_zone",
            field=field,
        ) from exc


def check_cron(expression: str, *, field: str = "trigger.expression") -> str:
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise InvalidInputError(
            f"cron expression {expression!r} is not valid: five fields, "
            "'minute hour day-of-month month day-of-week' (for example '0 2 * * 1')",
            code="invalid_cron",
            field=field,
        )
    return expression


def aware(value: datetime, zone: ZoneInfo) -> datetime:
    """A time without an offset read in ``zone``; in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def replace_trigger_time(value: object, fire: datetime) -> object:
    """``value`` with ``${{creation_context.trigger_time}}`` in its strings replaced by the
    fire time (ISO 8601, UTC)."""
    stamp = fire.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, str):
        return value.replace(TRIGGER_TIME, stamp)
    if isinstance(value, dict):
        return {k: replace_trigger_time(v, fire) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_trigger_time(v, fire) for v in value]
    return value


def _cron_next(expression: str, after: datetime, zone: ZoneInfo) -> datetime:
    # Stepped in naive wall-clock time, each tick then read in the zone as recurrences are
    # (zoneinfo's first occurrence): a repeated hour's tick fires once, a skipped one an hour
    # later on the clock. croniter's own aware stepping would fire a repeated tick twice.
    # A tick that maps to before ``after`` (in a repeated hour's second pass) was fired in
    # its first pass and is passed over.
    ticks = croniter(expression, after.astimezone(zone).replace(tzinfo=None))
    while True:
        tick: datetime = ticks.get_next(datetime)
        fire = tick.replace(tzinfo=zone).astimezone(UTC)
        if fire > after:
            return fire


def _recurrence_after(
    rule: Recurrence, start: datetime, after: datetime, zone: ZoneInfo
) -> Iterator[datetime]:
    if rule.frequency in ("minute", "hour"):
        yield from _fixed_steps(rule, start, after)
        return
    local_start = start.astimezone(zone)
    times = _times_of_day(rule, local_start)
    day = max(local_start.date(), after.astimezone(zone).date() - timedelta(days=1))
    for _ in range(_HORIZON_DAYS):
        if _active_day(rule, local_start.date(), day):
            for at in times:
                fire = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
                if fire > after and fire >= start:
                    yield fire
                    return
        day += timedelta(days=1)


def _fixed_steps(rule: Recurrence, start: datetime, after: datetime) -> Iterator[datetime]:
    """Minute and hour frequencies are absolute durations (a DST change does not move them)."""
    unit = timedelta(minutes=1) if rule.frequency == "minute" else timedelta(hours=1)
    step = unit * rule.interval
    if rule.frequency == "hour" and rule.minutes:
        base = start.replace(minute=0, second=0, microsecond=0)
        offsets = [timedelta(minutes=m) for m in sorted(set(rule.minutes))]
    else:
        base, offsets = start, [timedelta(0)]
    k = max(0, int((after - base) / step) - 1)
    for n in itertools.count(k):
        for offset in offsets:
            fire = base + n * step + offset
            if fire > after and fire >= start:
                yield fire
                return


def _times_of_day(rule: Recurrence, local_start: datetime) -> list[time]:
    hours = sorted(set(rule.hours)) or [local_start.hour]
    minutes = sorted(set(rule.minutes)) or ([local_start.minute] if not rule.hours else [0])
    return [time(h, m) for h in hours for m in minutes]


def _active_day(rule: Recurrence, first: date, day: date) -> bool:
    if rule.frequency == "day":
        return (day - first).days % rule.interval == 0
    if rule.frequency == "week":
        weeks = day - timedelta(days=day.weekday()) - (first - timedelta(days=first.weekday()))
        days = rule.week_days or (WEEK_DAYS[first.weekday()],)
        return (weeks.days // 7) % rule.interval == 0 and WEEK_DAYS[day.weekday()] in days
    months = (day.year - first.year) * 12 + day.month - first.month
    month_days = rule.month_days or (first.day,)
    return months % rule.interval == 0 and day.day in month_days


def parse_trigger(raw: dict[str, object], *, now: datetime) -> Trigger:
    """A trigger from its (schema-validated) mapping; bad time zones and cron expressions
    are InvalidInputErrors naming the field. ``start_time`` defaults to ``now``."""
    zone_raw = raw.get("time_zone")
    zone = check_time_zone(None if zone_raw is None else str(zone_raw))
    start_raw = raw.get("start_time")
    start = aware(start_raw, zone) if isinstance(start_raw, datetime) else now
    end_raw = raw.get("end_time")
    end = aware(end_raw, zone) if isinstance(end_raw, datetime) else None
    if end is not None and end <= start:
        raise InvalidInputError(
            "end_time is not after start_time", code="invalid_end_time", field="trigger.end_time"
        )
    if raw.get("type") == "cron":
        return Trigger(start, zone, end, expression=check_cron(str(raw.get("expression"))))
    schedule = raw.get("schedule") or {}
    assert isinstance(schedule, dict)
    recurrence = Recurrence(
        frequency=str(raw["frequency"]),
        interval=int(str(raw.get("interval") or 1)),
        hours=_ints(schedule.get("hours")),
        minutes=_ints(schedule.get("minutes")),
        week_days=tuple(str(d).lower() for d in _list(schedule.get("week_days"))),
        month_days=_ints(schedule.get("month_days")),
    )
    return Trigger(start, zone, end, recurrence=recurrence)


def _list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _ints(value: object) -> tuple[int, ...]:
    return tuple(int(str(v)) for v in _list(value))
