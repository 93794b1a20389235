-- A provider call is recorded when it starts (so a worker that dies mid-call still leaves it counted) and finished
-- with its outcome. `units`: the requests of the call the provider may bill (activities/providers/billing.py) —
-- answered, or whose answer was lost after they went out; NULL while the call runs (counted as one if it never
-- finishes: a killed worker). The cap on paid requests per step counts them per workflow run (`run_id`), so a retry
-- run asked for by the creator gets a fresh budget.
ALTER TABLE provider_calls ALTER COLUMN duration_ms DROP NOT NULL;
ALTER TABLE provider_calls ALTER COLUMN ok DROP NOT NULL;
ALTER TABLE provider_calls ADD COLUMN units integer;
ALTER TABLE provider_calls ADD COLUMN run_id text NOT NULL DEFAULT '';
UPDATE provider_calls SET units = CASE WHEN ok AND provider <> 'local' THEN 1 ELSE 0 END;
CREATE INDEX provider_calls_step ON provider_calls (smol_id, step, run_id);
