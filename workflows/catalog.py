"""The SoundFlow catalog on Temporal.

CatalogDayWorkflow(date): plan the day, render one free track per category (one activity each, in parallel),
rebuild the catalogs, validate them. Started by the daily schedule (the date is the day it fired for), by
`smol catalog run --date`, or by a schedule backfill. Running a day again makes nothing new: a track already stored
is not rendered again.

PremiumTrackWorkflow: one premium track on demand, through the premium provider chain, then the same rebuild and
validation.
"""

import asyncio
import dataclasses

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from activities.catalog import CatalogActivities
    from contracts.catalog import (
        CatalogDayInput,
        CatalogDayResult,
        MakePremiumInput,
        PlanDayInput,
        PremiumTrackInput,
        PremiumTrackResult,
        RebuildCatalogsInput,
        RenderTrackInput,
        ValidateCatalogsInput,
        category_name,
    )
    from smol.errors import InvalidInput, to_temporal
    from workflows.policies import CATALOG_POLICIES

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


def day_workflow_id(date: str) -> str:
    return f"catalog-day-{date}"


def premium_workflow_id(date: str, track_id: str) -> str:
    return f"catalog-premium-{date}-{track_id}"


async def _run(name: str, activity, arg):
    return await workflow.execute_activity_method(activity, arg, **CATALOG_POLICIES[name].activity_options())


async def _rebuild_and_validate(reason: str, date: str) -> int:
    rebuilt = await _run("rebuild", CatalogActivities.rebuild, RebuildCatalogsInput(reason))
    await _run("validate", CatalogActivities.validate, ValidateCatalogsInput([date]))
    return rebuilt.entries


@workflow.defn(name="CatalogDayWorkflow")
class CatalogDayWorkflow:
    @workflow.run
    async def run(self, data: CatalogDayInput) -> CatalogDayResult:
        date = data.date or self._scheduled_day()
        plan = await _run("plan_day", CatalogActivities.plan_day, PlanDayInput(date, data.seconds))
        tracks = await asyncio.gather(*(
            _run("render_track", CatalogActivities.render_track, RenderTrackInput(date, spec)) for spec in plan.tracks
        ))  # fmt: skip
        entries = await _rebuild_and_validate(f"day {date}", date)
        return CatalogDayResult(date, list(tracks), entries)

    @staticmethod
    def _scheduled_day() -> str:
        """The day the schedule fired for (a backfilled or caught-up run makes its own day), else today (UTC)."""
        fired = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        return (fired or workflow.now()).date().isoformat()


@workflow.defn(name="PremiumTrackWorkflow")
class PremiumTrackWorkflow:
    @workflow.run
    async def run(self, data: PremiumTrackInput) -> PremiumTrackResult:
        date = data.date or workflow.now().date().isoformat()
        name = category_name(data.category)
        if name is None:
            raise to_temporal(InvalidInput(f"unknown category {data.category!r}"))
        plan = await _run("plan_day", CatalogActivities.plan_day, PlanDayInput(date, data.duration))
        spec = dataclasses.replace(next(t for t in plan.tracks if t.category == name), id=data.track_id)
        made = await _run("make_premium", CatalogActivities.make_premium, MakePremiumInput(date, spec, data.model))
        await _rebuild_and_validate(f"premium {made.entry_id}", date)
        return made
