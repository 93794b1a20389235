-- A passkey registered since addresses are proven (POST /login create) is bound to the wallet address derived from
-- its credential id, and an address to at most one passkey. Rows from before carry address_proven = false: the old
-- create bound any address to any number of credentials, so a plain unique index could fail on existing data; this
-- one covers proven rows, the create transaction refuses an address any row already holds, and connect re-derives
-- the address of every row, so an old binding that does not derive no longer logs in.
ALTER TABLE passkeys ADD COLUMN address_proven boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX passkeys_proven_address ON passkeys (address) WHERE address_proven;
