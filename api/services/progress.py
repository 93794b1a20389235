"""How far a smol in progress is, and how long it will still take: `{percent, eta_seconds, step}`, from the medians of
the recent durations of each step with each provider, read from `provider_calls` (every provider call is a row with
its step, provider, start and duration). A step's duration in a run is its first call's start to its last call's end
(retries and fallbacks included); the songs (poll and archive) last from the submission's end to the last archive's.
The provider assumed for a step is the one this smol is using, else the one that did the step most recently."""

import time
from datetime import UTC, datetime

from contracts.steps import Step
from smol.settings import get_settings

RECENT_CALLS = 500  # per step: the window the medians are taken over
RECENT_RUNS = 20  # per step and provider
SONGS = "songs"
# Before any history: rough durations of the remote providers, in seconds.
DEFAULTS = {Step.IMAGE: 10.0, Step.DESCRIPTION: 5.0, Step.LYRICS: 10.0, Step.NSFW: 3.0, Step.SUBMIT: 5.0, SONGS: 120.0}
# Steps that call no provider (save the payload, store the results), and Temporal's scheduling of each step.
FIXED = {Step.PAYLOAD: 0.1, Step.STORE: 0.15}
PER_STEP = 0.05
STAGES = [Step.PAYLOAD, Step.IMAGE, Step.DESCRIPTION, Step.LYRICS, Step.NSFW, Step.SUBMIT, SONGS, Step.STORE]
PROVIDER_STEPS = [Step.IMAGE, Step.DESCRIPTION, Step.LYRICS, Step.NSFW, Step.SUBMIT]

_MEDIANS_SQL = f"""
WITH calls AS (
    SELECT c.* FROM unnest($1::text[]) AS s(step)
    CROSS JOIN LATERAL (SELECT * FROM provider_calls p WHERE p.step = s.step AND p.duration_ms IS NOT NULL
                        ORDER BY p.started_at DESC LIMIT {RECENT_CALLS}) c
), steps AS (
    SELECT step, (array_agg(provider ORDER BY started_at DESC) FILTER (WHERE ok))[1] AS provider,
           extract(epoch FROM max(started_at + duration_ms * interval '1 ms') - min(started_at)) AS seconds,
           max(started_at) AS at
    FROM calls GROUP BY step, smol_id, run_id HAVING bool_or(ok)
), songs AS (
    SELECT '{SONGS}' AS step, a.provider,
           extract(epoch FROM max(a.started_at + a.duration_ms * interval '1 ms')
                              - min(s.started_at + s.duration_ms * interval '1 ms')) AS seconds,
           max(a.started_at) AS at
    FROM calls a JOIN provider_calls s ON s.smol_id = a.smol_id AND s.run_id = a.run_id AND s.step = 'submit' AND s.ok
    WHERE a.step = 'archive' AND a.ok
    GROUP BY a.smol_id, a.run_id, a.provider HAVING count(DISTINCT a.id) >= 2
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY step, provider ORDER BY at DESC) AS n
    FROM (SELECT * FROM steps UNION ALL SELECT * FROM songs) runs WHERE seconds >= 0
)
SELECT step, provider, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median, max(at) AS latest
FROM ranked WHERE n <= {RECENT_RUNS} GROUP BY step, provider
"""

_cache: tuple[float, dict] | None = None


async def recent_medians(pool) -> dict[str, list[tuple[str, float, datetime]]]:
    """{stage: [(provider, median seconds, last seen)], most recently seen first}, cached for a few seconds
    (SMOL_PROGRESS_CACHE_SECONDS)."""
    global _cache
    if _cache is None or time.monotonic() - _cache[0] >= get_settings().progress_cache_seconds:
        rows = await pool.fetch(_MEDIANS_SQL, [*PROVIDER_STEPS, Step.ARCHIVE])
        medians: dict[str, list] = {}
        for row in sorted(rows, key=lambda r: r["latest"], reverse=True):
            medians.setdefault(row["step"], []).append((row["provider"], float(row["median"]), row["latest"]))
        _cache = (time.monotonic(), medians)
    return _cache[1]


async def providers_of(pool, smol_id: str) -> dict[str, str]:
    """The provider this smol last asked for each step (the songs: the one that took the submission)."""
    rows = await pool.fetch(
        "SELECT DISTINCT ON (step) step, provider FROM provider_calls WHERE smol_id = $1 "
        "ORDER BY step, ok IS NOT FALSE DESC, started_at DESC",
        smol_id,
    )
    used = {row["step"]: row["provider"] for row in rows}
    if Step.SUBMIT in used:
        used[SONGS] = used[Step.SUBMIT]
    return used


def expected(stage: str, medians: dict, provider: str | None) -> float:
    if stage in FIXED:
        return FIXED[stage]
    known = medians.get(stage) or []
    for name, seconds, _ in known:
        if name == provider:
            return seconds
    return known[0][1] if known else DEFAULTS[stage]


def _stage_states(wf: dict) -> dict[str, dict]:
    states = {s["name"]: s for s in wf.get("steps") or []}
    if Step.POLL in states:
        states[SONGS] = states[Step.POLL]
    return states


def _elapsed(state: dict, now: datetime) -> float:
    try:
        return max((now - datetime.fromisoformat(state["started_at"])).total_seconds(), 0.0)
    except (KeyError, TypeError, ValueError):
        return 0.0


async def estimate(pool, smol_id: str, kv_do: dict, wf: dict) -> dict:
    """`{percent, eta_seconds, step}` of a smol in progress (`eta_seconds` None while it is paused)."""
    medians, used = await recent_medians(pool), await providers_of(pool, smol_id)
    song_model = (kv_do.get("payload") or {}).get("song_model")
    if song_model and SONGS not in used:
        used[SONGS] = used[Step.SUBMIT] = song_model
    states, now = _stage_states(wf), datetime.now(UTC)
    total = remaining = 0.0
    for stage in STAGES:
        state = states.get(stage, {}).get("state", "pending")
        if state == "reused":
            continue
        seconds = expected(stage, medians, used.get(stage)) + PER_STEP
        total += seconds
        if state == "running":
            remaining += max(seconds - _elapsed(states[stage], now), 0.0)
        elif state not in ("done", "failed"):
            remaining += seconds
    percent = int(100 * (total - remaining) / total) if total else 0
    return {
        "percent": min(max(percent, 0), 99),
        "eta_seconds": None if wf.get("status") == "paused" else round(remaining, 1),
        "step": wf.get("current_step"),
    }
