"""When schedule triggers fire: cron and recurrence, time zones, DST, start and end times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.schedules import parse_trigger, replace_trigger_time

NOW = datetime(2026, 3, 4, 10, 17, tzinfo=UTC)  # a Wednesday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(raw: dict[str, Any], count: int = 3, after: datetime = NOW) -> list[datetime]:
    return parse_trigger(raw, now=NOW).upcoming(after, count)


def test_cron_fires_at_its_ticks_in_utc_by_default() -> None:
    assert fires({"type": "cron", "expression": "30 2 * * *"}) == [
        utc(2026, 3, 5, 2, 30),
        utc(2026, 3, 6, 2, 30),
        utc(2026, 3, 7, 2, 30),
    ]


def test_cron_in_a_time_zone_follows_its_dst_change() -> None:
    # New York moves to summer time on Sunday 8 March 2026: 09:00 local is 14:00 UTC before,
    # 13:00 UTC after.
    trigger = parse_trigger(
        {"type": "cron", "expression": "0 9 * * *", "time_zone": "America/New_York"}, now=NOW
    )
    got = trigger.upcoming(utc(2026, 3, 6, 15), 3)
    assert got == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]


@pytest.mark.parametrize(
    "trigger",
    [
        {"type": "cron", "expression": "30 2 * * *"},
        {"type": "recurrence", "frequency": "day", "schedule": {"hours": 2, "minutes": 30},
         "start_time": datetime(2026, 3, 1)},
    ],
)  # fmt: skip
def test_a_skipped_wall_clock_time_fires_an_hour_later_and_a_repeated_one_once(
    trigger: dict[str, Any],
) -> None:
    # Paris: 02:00-03:00 does not exist on 29 March 2026 and happens twice on 25 October.
    parsed = parse_trigger({**trigger, "time_zone": "Europe/Paris"}, now=utc(2026, 3, 1))
    assert parsed.upcoming(utc(2026, 3, 28, 12), 2) == [
        utc(2026, 3, 29, 1, 30),  # 03:30 CEST
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]
    assert parsed.upcoming(utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first of the two
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    ]


def test_a_recurrence_every_day_in_a_time_zone_keeps_its_wall_clock_time_across_dst() -> None:
    raw = {
        "type": "recurrence",
        "frequency": "day",
        "interval": 1,
        "schedule": {"hours": [9], "minutes": [0]},
        "start_time": datetime(2026, 3, 6, 0, 0),  # no offset: New York time
        "time_zone": "America/New_York",
    }
    got = parse_trigger(raw, now=NOW).upcoming(utc(2026, 3, 6, 15), 3)
    assert got == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]


def test_recurrence_every_15_minutes_from_its_start() -> None:
    raw = {"type": "recurrence", "frequency": "minute", "interval": 15,
           "start_time": utc(2026, 3, 4, 10, 5)}  # fmt: skip
    assert fires(raw) == [utc(2026, 3, 4, 10, 20), utc(2026, 3, 4, 10, 35), utc(2026, 3, 4, 10, 50)]


def test_recurrence_without_a_start_fires_at_once() -> None:
    trigger = parse_trigger({"type": "recurrence", "frequency": "hour", "interval": 2}, now=NOW)
    assert trigger.upcoming(NOW - timedelta(seconds=1), 2) == [NOW, utc(2026, 3, 4, 12, 17)]


def test_recurrence_every_other_week_on_given_days() -> None:
    raw = {
        "type": "recurrence",
        "frequency": "week",
        "interval": 2,
        "schedule": {"week_days": ["monday", "friday"], "hours": 6, "minutes": [30]},
        "start_time": utc(2026, 3, 2),  # a Monday
    }
    got = parse_trigger(raw, now=NOW).upcoming(utc(2026, 3, 2), 4)
    assert got == [
        utc(2026, 3, 2, 6, 30),
        utc(2026, 3, 6, 6, 30),
        utc(2026, 3, 16, 6, 30),  # the week of 9 March is skipped
        utc(2026, 3, 20, 6, 30),
    ]


def test_recurrence_monthly_on_month_days() -> None:
    raw = {"type": "recurrence", "frequency": "month", "interval": 1,
           "schedule": {"month_days": [1, 15], "hours": [0], "minutes": [0]},
           "start_time": utc(2026, 3, 4)}  # fmt: skip
    assert fires(raw) == [utc(2026, 3, 15), utc(2026, 4, 1), utc(2026, 4, 15)]


def test_start_time_in_the_future_and_end_time_bound_the_fires() -> None:
    raw = {
        "type": "cron",
        "expression": "0 * * * *",
        "start_time": utc(2026, 3, 5, 10, 30),
        "end_time": utc(2026, 3, 5, 12, 0),
    }
    assert fires(raw, count=5) == [utc(2026, 3, 5, 11), utc(2026, 3, 5, 12)]
    assert parse_trigger(raw, now=NOW).next_fire(utc(2026, 3, 5, 12)) is None


@pytest.mark.parametrize("expression", ["61 * * * *", "* * *", "0 0 * * * *", "every day"])
def test_a_bad_cron_expression_names_the_field(expression: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_trigger({"type": "cron", "expression": expression}, now=NOW)
    assert caught.value.field == "trigger.expression"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", ""])
def test_a_bad_time_zone_names_the_field(zone: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_trigger({"type": "cron", "expression": "0 0 * * *", "time_zone": zone}, now=NOW)
    assert caught.value.field == "trigger.time_zone"


def test_an_end_before_the_start_names_the_field() -> None:
    raw = {"type": "cron", "expression": "0 0 * * *", "start_time": utc(2026, 3, 5),
           "end_time": utc(2026, 3, 4)}  # fmt: skip
    with pytest.raises(InvalidInputError) as caught:
        parse_trigger(raw, now=NOW)
    assert caught.value.field == "trigger.end_time"


def test_trigger_time_is_replaced_in_strings_only() -> None:
    value = {
        "a": "at ${{creation_context.trigger_time}}",
        "b": [1, "${{creation_context.trigger_time}}"],
    }
    assert replace_trigger_time(value, utc(2026, 3, 5, 2, 30)) == {
        "a": "at 2026-03-05T02:30:00Z",
        "b": [1, "2026-03-05T02:30:00Z"],
    }
