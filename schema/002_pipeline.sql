-- What the pipeline saves as it goes, so a retry run reuses every finished step.
CREATE TABLE smol_steps (
    smol_id    text NOT NULL,
    step       text NOT NULL,
    data       jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (smol_id, step)
);

CREATE TABLE smol_songs (
    music_id   text PRIMARY KEY,
    smol_id    text NOT NULL,
    variant    smallint NOT NULL,
    provider   text NOT NULL,
    status     smallint NOT NULL,
    object_key text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX smol_songs_smol ON smol_songs (smol_id);

-- One row per call to an AI provider: what each smol cost, and proof that no finished step was paid twice.
CREATE TABLE provider_calls (
    id          bigserial PRIMARY KEY,
    smol_id     text NOT NULL,
    step        text NOT NULL,
    provider    text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    ok          boolean NOT NULL,
    error       text
);
CREATE INDEX provider_calls_smol ON provider_calls (smol_id);
