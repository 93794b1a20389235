-- A smol's whole document in one tsvector: title (A) and style tags (B), as in `smol_search.head`, then lyrics (C),
-- description and prompt (D). It replaces `smol_bodies.body` (C and D alone), whose GIN index could not find a smol
-- whose words were split between fields ("frog" in the title, "rain" in the lyrics) for a query of phrases, "or",
-- "-not" or three words or more (smol/search.py `_search_documents`): neither index held both words of it.
ALTER TABLE smol_bodies ADD COLUMN whole tsvector NOT NULL DEFAULT '';
UPDATE smol_bodies b SET whole = coalesce((SELECT d.head FROM smol_search d WHERE d.smol_id = b.smol_id), '') || b.body;
ALTER TABLE smol_bodies ALTER COLUMN whole DROP DEFAULT;
ALTER TABLE smol_bodies DROP COLUMN body;  -- (and its index)
CREATE INDEX smol_bodies_whole ON smol_bodies USING gin (whole);
