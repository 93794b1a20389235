-- A credential id is no secret (a deployed passkey-kit wallet stores it on chain), so registering it proves nothing
-- by itself: anyone could register another key under it and take its wallet address. A binding is confirmed
-- (`on_chain`) once the deployed wallet's signer for the credential holds the registered public key; one that the
-- deployed wallet contradicts no longer logs in, and its owner's registration replaces it (api/routers/auth.py).
-- `generation` counts the bindings of the credential: a session token carries the one it was issued for (claim
-- `gen`, 0 when absent), so those of a replaced binding stop working (api/deps.py).
ALTER TABLE passkeys ADD COLUMN on_chain boolean NOT NULL DEFAULT false;
ALTER TABLE passkeys ADD COLUMN generation integer NOT NULL DEFAULT 0;
