-- The catalog of seed 000 (D1), in Postgres. Created_At keeps whole seconds: the list cursor carries
-- "YYYY-MM-DD HH:MM:SS", so the stored value must compare exactly with it.
CREATE TABLE smols (
    id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
    title        text NOT NULL,
    song_1       text NOT NULL,
    song_2       text NOT NULL,
    created_at   timestamp(0) NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    public       boolean NOT NULL DEFAULT true,
    instrumental boolean NOT NULL DEFAULT false,
    plays        integer NOT NULL DEFAULT 0,
    views        integer NOT NULL DEFAULT 0,
    address      text NOT NULL,
    mint_token   text,
    mint_amm     text
);
CREATE INDEX smols_public_newest ON smols (created_at DESC, id DESC) WHERE public;
CREATE INDEX smols_address_newest ON smols (address, created_at DESC, id DESC);
CREATE INDEX smols_song_1 ON smols (song_1);
CREATE INDEX smols_song_2 ON smols (song_2);

CREATE TABLE users (
    username text NOT NULL,
    address  text NOT NULL,
    UNIQUE (username, address)
);

CREATE TABLE likes (
    id         text NOT NULL,
    address    text NOT NULL,
    created_at timestamp(0) NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    UNIQUE (id, address)
);
CREATE INDEX likes_address ON likes (address);

CREATE TABLE playlists (
    title      text NOT NULL,
    id         text NOT NULL,
    created_at timestamp(0) NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    PRIMARY KEY (title, id)
);
CREATE INDEX playlists_smol ON playlists (id);

CREATE TABLE mixtapes (
    id         text PRIMARY KEY,
    title      text NOT NULL,
    "desc"     text NOT NULL,
    smols      text[] NOT NULL,
    address    text NOT NULL,
    created_at timestamp(0) NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX mixtapes_newest ON mixtapes (created_at DESC, id DESC);
