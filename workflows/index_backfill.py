"""BackfillIndexWorkflow: index the smols made before search existed (or all of them, after the vector's recipe
changed), a batch at a time, continuing as new before its history grows long. `smol index --backfill` starts it."""

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.indexing import IndexActivities
    from contracts.search import (
        AnalyzeSmolInput,
        AnalyzeSmolResult,
        BackfillIndexInput,
        BackfillIndexResult,
        IndexSmolInput,
        UnindexedSmolsInput,
    )
    from workflows.policies import INDEX_POLICIES

WORKFLOW_ID = "smol-index-backfill"
BATCHES_PER_RUN = 50


async def index_one(smol_id: str) -> bool:
    """analyze then index one smol; the two steps SmolWorkflow runs too."""
    return await index_analyzed(smol_id, await analyze(smol_id))


async def analyze(smol_id: str) -> AnalyzeSmolResult:
    return await workflow.execute_activity_method(
        IndexActivities.analyze_smol, AnalyzeSmolInput(smol_id=smol_id), **INDEX_POLICIES["analyze"].activity_options()
    )


async def index_analyzed(smol_id: str, analysis: AnalyzeSmolResult) -> bool:
    result = await workflow.execute_activity_method(
        IndexActivities.index_smol, IndexSmolInput(smol_id=smol_id, songs=analysis.songs),
        **INDEX_POLICIES["index"].activity_options(),
    )  # fmt: skip
    return result.indexed


@workflow.defn
class BackfillIndexWorkflow:
    @workflow.run
    async def run(self, data: BackfillIndexInput) -> BackfillIndexResult:
        after, indexed = data.after, data.indexed
        for _ in range(BATCHES_PER_RUN):
            page = await workflow.execute_activity_method(
                IndexActivities.unindexed_smols, UnindexedSmolsInput(after=after, limit=data.batch, every=data.every),
                **INDEX_POLICIES["unindexed"].activity_options(),
            )  # fmt: skip
            if not page.smol_ids:
                return BackfillIndexResult(indexed=indexed)
            indexed += sum(await asyncio.gather(*(index_one(smol_id) for smol_id in page.smol_ids)))
            after = page.smol_ids[-1]
        workflow.continue_as_new(BackfillIndexInput(every=data.every, batch=data.batch, after=after, indexed=indexed))
