-- `search_lexemes.smols` counts the smols anyone may see (public and safe) that hold the lexeme, no others: the
-- completions of a word being typed are ranked by it (smol/search.py `_words`), and a count that included private,
-- unsafe or deleted smols let anyone tell, from which completions were offered, that a hidden smol held a word.
-- Kept exact where it changes: indexing (smol/search.py `_save_postings`, under a share lock on the smol's row),
-- and here, when a smol's visibility changes or it is deleted (before the cascade takes its postings). Counters are
-- changed in byte order of the lexeme ("C", the counters' own; Python's sorted() too), as indexing changes them: no
-- deadlock between the two (a statement changing several smols may still meet one: the API answers 503).
CREATE FUNCTION search_lexemes_follow_listing() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_listed boolean := TG_OP = 'UPDATE' OR TG_OP = 'DELETE';
    is_listed  boolean := TG_OP = 'UPDATE';
    held       text;
BEGIN
    was_listed := was_listed AND OLD.public AND OLD.safe;
    is_listed := is_listed AND NEW.public AND NEW.safe;
    IF was_listed IS DISTINCT FROM is_listed THEN
        FOR held IN SELECT lexeme FROM search_postings WHERE smol_id = OLD.id ORDER BY lexeme COLLATE "C" LOOP
            UPDATE search_lexemes SET smols = smols + CASE WHEN is_listed THEN 1 ELSE -1 END WHERE lexeme = held;
        END LOOP;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER smols_listing_counts BEFORE UPDATE OF public, safe OR DELETE ON smols
    FOR EACH ROW EXECUTE FUNCTION search_lexemes_follow_listing();

UPDATE search_lexemes SET smols = 0;
UPDATE search_lexemes l SET smols = listed.smols
FROM (SELECT p.lexeme, count(*) AS smols FROM search_postings p JOIN smols s ON s.id = p.smol_id
      WHERE s.public AND s.safe GROUP BY p.lexeme) AS listed
WHERE listed.lexeme = l.lexeme;

-- Completions read only words some smol anyone may see holds (smol/search.py `_words`).
CREATE INDEX search_lexemes_listed ON search_lexemes (lexeme) WHERE smols > 0;
