-- A provider call is recorded when it starts (so a worker that dies mid-call still leaves it counted), and finished
-- with its outcome. `paid`: the provider may have charged for it — it answered, or its answer was lost (timeout,
-- dropped connection, killed worker); an HTTP refusal is not paid. The cap on paid calls per step counts these,
-- per workflow run (`run_id`), so a retry run asked for by the creator gets a fresh budget.
ALTER TABLE provider_calls ALTER COLUMN duration_ms DROP NOT NULL;
ALTER TABLE provider_calls ALTER COLUMN ok DROP NOT NULL;
ALTER TABLE provider_calls ADD COLUMN paid boolean NOT NULL DEFAULT true;
ALTER TABLE provider_calls ADD COLUMN run_id text NOT NULL DEFAULT '';
UPDATE provider_calls SET paid = ok;
CREATE INDEX provider_calls_step ON provider_calls (smol_id, step, run_id);
