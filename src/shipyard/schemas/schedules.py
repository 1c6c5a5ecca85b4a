"""Schedules: Azure ML's schedule YAML (``schedule.schema.json``) as a request body.

``create_job`` is the job the schedule submits at every fire: the job YAML as the SDK or CLI
sends it to ``POST /jobs`` (local files uploaded and replaced by references), or an existing
job as a template (``azureml:<job name>``, or ``{job: azureml:<job name>, ...changes}``).
``overrides`` (``--set``-like ``path: value`` pairs, dotted paths) are merged into it when the
schedule is made.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from shipyard.schemas.common import RequestBody, ResponseBody

SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$")
WeekDay = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class RecurrencePattern(RequestBody):
    hours: int | list[Annotated[int, Field(ge=0, le=23)]] | None = Field(default=None)
    minutes: int | list[Annotated[int, Field(ge=0, le=59)]] | None = Field(default=None)
    week_days: WeekDay | list[WeekDay] | None = None
    month_days: int | list[Annotated[int, Field(ge=1, le=31)]] | None = None


class _TriggerBase(RequestBody):
    start_time: datetime | None = Field(
        default=None,
        description="First fire at or after this; an offset-less time is read "
        "in time_zone. Omitted: when the schedule is created.",
    )
    end_time: datetime | None = None
    time_zone: str | None = Field(default=None, description="An IANA name; UTC when omitted.")


class CronTrigger(_TriggerBase):
    type: Literal["cron"]
    expression: str = Field(min_length=1, max_length=200)


class RecurrenceTrigger(_TriggerBase):
    type: Literal["recurrence"]
    frequency: Literal["minute", "hour", "day", "week", "month"]
    interval: int = Field(default=1, ge=1, le=10_000)
    schedule: RecurrencePattern | None = None


Trigger = Annotated[CronTrigger | RecurrenceTrigger, Field(discriminator="type")]


class ScheduleCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    trigger: Trigger
    create_job: dict[str, Any] | str = Field(
        description="The job to submit at every fire: a job spec (command, pipeline or "
        "sweep); azureml:<job name> (that job as it was submitted); or {job: azureml:<job "
        "name>, ...changes} (inputs, outputs, settings and tags merged key by key)."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Dotted paths and values merged into create_job."
    )
    is_enabled: bool = True


class ScheduleRead(ResponseBody):
    name: str
    display_name: str | None
    description: str | None
    tags: dict[str, str]
    properties: dict[str, str]
    trigger: dict[str, Any]
    create_job: dict[str, Any]
    is_enabled: bool
    provisioning_state: str = "Succeeded"
    next_fire_time: datetime | None
    last_fire_time: datetime | None
    upcoming_fire_times: list[datetime] = Field(default_factory=list)
    created_by: str
    created_at: datetime
    updated_at: datetime


class ScheduleFireRead(ResponseBody):
    fire_time: datetime
    fired_at: datetime
    job_name: str | None
    error: str | None
    skipped: int = Field(description="Earlier fires missed while no server ran, not run.")
