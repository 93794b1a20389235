-- One visibility rule (smol/repo.py `visible_to`): a smol's content is shown to its owner, and to others only when
-- it is public AND safe. `safe` is false once the nsfw step said unsafe, whichever of the row and the verdict is
-- written first, and it never turns back: an owner's `public` cannot override a verdict.
ALTER TABLE smols ADD COLUMN safe boolean NOT NULL DEFAULT true;

CREATE FUNCTION smol_flagged(smol text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM smol_steps
                   WHERE smol_id = smol AND step = 'nsfw' AND data->'value'->>'safe' = 'false')
$$;

UPDATE smols SET safe = false WHERE smol_flagged(id);

CREATE FUNCTION smols_flag_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.safe := NEW.safe AND NOT smol_flagged(NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER smols_safe BEFORE INSERT ON smols FOR EACH ROW EXECUTE FUNCTION smols_flag_on_insert();

CREATE FUNCTION smol_steps_flag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE smols SET safe = false WHERE id = NEW.smol_id AND safe;
    RETURN NULL;
END $$;
CREATE TRIGGER smol_steps_safe AFTER INSERT OR UPDATE ON smol_steps FOR EACH ROW
    WHEN (NEW.step = 'nsfw' AND NEW.data->'value'->>'safe' = 'false') EXECUTE FUNCTION smol_steps_flag();

-- `GET /`, playlists and tags list what anyone may see.
DROP INDEX smols_public_newest;
CREATE INDEX smols_shown_newest ON smols (created_at DESC, id DESC) WHERE public AND safe;

-- Smols their owner deleted (or a cancel discarded): their workflow history may outlive the rows for a while, and
-- must not make them readable or retryable again.
CREATE TABLE deleted_smols (
    id         text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
