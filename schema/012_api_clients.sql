-- API keys: only the SHA-256 of a key is stored (a key is 256 random bits, so a fast hash is enough to make a stolen
-- table useless); `prefix` is the start of the key, shown to its owner so they can tell their keys apart.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    address      text NOT NULL,
    name         text NOT NULL,
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_address ON api_keys (address, created_at DESC);

-- Idempotency-Key on creating requests (smol/idempotency.py): one row per caller and key. `request_hash` is the
-- method, path and body of the first request; `status` is NULL while it is in flight, then its answer is kept for
-- 24 hours and replayed to the same request.
CREATE TABLE idempotency_keys (
    address      text NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       smallint,
    content_type text,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (address, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Progress estimates read the recent durations of each step and provider (api/services/progress.py).
CREATE INDEX provider_calls_recent ON provider_calls (step, started_at DESC);
