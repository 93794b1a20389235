-- Recent smol creations per address, for the per-user rate limit on POST / (shared by every API process).
CREATE TABLE create_requests (
    address    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX create_requests_address ON create_requests (address, created_at);
