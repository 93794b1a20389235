-- Search and discovery (smol/search.py). Visibility is never stored here: every query joins `smols` and applies
-- the one rule (smol/repo.py `visible_to`), so making a smol private or flagging it needs no re-index; rows about a
-- smol go with it (ON DELETE CASCADE). Needs pgvector (the embedded pgserver ships it).
CREATE EXTENSION IF NOT EXISTS vector;

-- What full-text search reads, written by the index step (activities/indexing.py), stemmed ('english'): the words of
-- the title (weight A) and style tags (B) in `smol_search.head`, of the lyrics (C), description and prompt (D) in
-- `smol_bodies.body`. Two narrow tables rather than one document: a common word is in a few thousand heads (all
-- ranked, quickly, as heads are small and packed) and in tens of thousands of lyrics (a sample is ranked: a lyrics
-- match never outranks a title or style match anyway). Also: the style tags for /tags, a mood and a theme for the
-- explanation of a result, and the smol's `created_at` (it never changes) to break ties newest first.
CREATE TABLE smol_search (
    smol_id    text PRIMARY KEY REFERENCES smols (id) ON DELETE CASCADE,
    head       tsvector NOT NULL,
    created_at timestamp(0) NOT NULL,
    style      text[] NOT NULL,
    mood       text,
    theme      text,
    indexed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX smol_search_head ON smol_search USING gin (head);
CREATE INDEX smol_search_style ON smol_search USING gin (style);

CREATE TABLE smol_bodies (
    smol_id text PRIMARY KEY REFERENCES smols (id) ON DELETE CASCADE,
    body    tsvector NOT NULL
);
CREATE INDEX smol_bodies_body ON smol_bodies USING gin (body);

-- What "more like this" compares: the smol's vector (activities/analysis.py `smol_vector`: audio of its songs,
-- style tags, words), nearest first by cosine distance over an HNSW index; the audio features it came from.
CREATE TABLE smol_vectors (
    smol_id   text PRIMARY KEY REFERENCES smols (id) ON DELETE CASCADE,
    embedding vector(128) NOT NULL,
    features  jsonb NOT NULL
);
CREATE INDEX smol_vectors_embedding ON smol_vectors USING hnsw (embedding vector_cosine_ops);

-- Typo tolerance without pg_trgm (pgserver does not ship it): every indexed word under each of its one-letter
-- deletions ("frog" under frog, rog, fog, frg, fro). A query word and an indexed word within one edit share a
-- variant (symmetric delete); the search checks the real distance before using a candidate.
CREATE TABLE search_words (
    variant text NOT NULL,
    word    text NOT NULL,
    PRIMARY KEY (variant, word)
);

-- Plays and views per smol and hour, for /trending's windows: `smols.plays`/`views` are running totals, so a
-- trigger records each increase where it happens (repo.count_play, repo.view_smol) with no change to those paths.
CREATE TABLE smol_counts (
    smol_id text NOT NULL REFERENCES smols (id) ON DELETE CASCADE,
    hour    timestamp(0) NOT NULL,
    plays   integer NOT NULL DEFAULT 0,
    views   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (smol_id, hour)
);
CREATE INDEX smol_counts_hour ON smol_counts (hour);

CREATE FUNCTION smol_counts_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO smol_counts (smol_id, hour, plays, views)
    VALUES (NEW.id, date_trunc('hour', now() AT TIME ZONE 'utc'),
            greatest(NEW.plays - OLD.plays, 0), greatest(NEW.views - OLD.views, 0))
    ON CONFLICT (smol_id, hour) DO UPDATE
        SET plays = smol_counts.plays + EXCLUDED.plays, views = smol_counts.views + EXCLUDED.views;
    RETURN NULL;
END $$;
CREATE TRIGGER smols_counts AFTER UPDATE OF plays, views ON smols FOR EACH ROW
    WHEN (NEW.plays > OLD.plays OR NEW.views > OLD.views) EXECUTE FUNCTION smol_counts_record();

CREATE INDEX likes_newest ON likes (created_at);
CREATE INDEX users_address ON users (address);
