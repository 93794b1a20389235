-- When each song last changed (status or audio), so a stalled job is told from a slow one across activity
-- attempts and worker restarts; and the provider's partial audio URL while a song streams.
ALTER TABLE smol_songs ADD COLUMN progressed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE smol_songs ADD COLUMN audio_url text;
