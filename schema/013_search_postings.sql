-- Ranked full-text search without ranking every match (smol/search.py `search`): one row per word (stemmed lexeme)
-- of each indexed smol with how strongly the smol is about it (`impact`), in an index ordered best first. The best
-- matches of a word are then the first entries under it, newest first among equals, read without touching the
-- others; a common word in 100,000 smols costs what a rare one does. `smol_search.head` and `smol_bodies.body`
-- stay: they explain a result (which fields matched) and serve queries with phrases, "or" and "-not".
CREATE TABLE search_postings (
    smol_id    text NOT NULL REFERENCES smols (id) ON DELETE CASCADE,
    lexeme     text NOT NULL,
    impact     real NOT NULL,
    created_at timestamp(0) NOT NULL,
    PRIMARY KEY (smol_id, lexeme)
);
CREATE INDEX search_postings_best ON search_postings (lexeme, impact DESC, created_at DESC, smol_id DESC);

-- How strongly a smol is about a lexeme, from the weights of its occurrences (A title, B style tags, C lyrics,
-- D description and prompt): each field's weight × (2 - 1/occurrences there), summed. Repeating a word can at most
-- double a field's weight, so a title match (1.0) always outranks a style match (< 0.8), which outranks a lyrics
-- match (< 0.4), which outranks a description match (< 0.2).
CREATE FUNCTION search_impact(weights text[]) RETURNS real LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sum(CASE w WHEN 'A' THEN 1.0 WHEN 'B' THEN 0.4 WHEN 'C' THEN 0.2 ELSE 0.1 END * (2 - 1.0 / n))::real
    FROM (SELECT w, count(*) AS n FROM unnest(weights) AS w GROUP BY w) AS fields
$$;

-- Every lexeme indexed and in how many smols: completions of a prefix are its most common lexemes. Counted when a
-- smol is indexed (smol/search.py `save_index`); a deleted smol's words stay counted (a ranking hint only).
CREATE TABLE search_lexemes (
    lexeme text COLLATE "C" PRIMARY KEY,  -- (byte order: a prefix is a range of the index)
    smols  integer NOT NULL
);

INSERT INTO search_postings (smol_id, lexeme, impact, created_at)
SELECT d.smol_id, u.lexeme, search_impact(u.weights), d.created_at
FROM smol_search d JOIN smol_bodies b ON b.smol_id = d.smol_id, unnest(d.head || b.body) AS u;

INSERT INTO search_lexemes (lexeme, smols)
SELECT lexeme, count(*) FROM search_postings GROUP BY lexeme;
