-- One row per mint request (single or batch), its progress, and every transaction built for it.
CREATE TABLE mints (
    id         text PRIMARY KEY,
    address    text NOT NULL,
    smol_ids   text[] NOT NULL,
    batch      boolean NOT NULL,
    client_xdr text NOT NULL,
    status     text NOT NULL DEFAULT 'queued',  -- queued, checking, signing, submitting, confirming, minted, failed
    tx_hash    text,
    error      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A smol can be in one mint at a time: the claim is taken with the request and released when the mint ends.
CREATE TABLE mint_claims (
    smol_id text PRIMARY KEY,
    mint_id text NOT NULL REFERENCES mints (id)
);

-- Each signed transaction. `state`: signed (never sent), sent (sendTransaction was called: never send it again),
-- rejected (the network refused it), expired (past its last ledger without being included), done.
CREATE TABLE mint_transactions (
    hash       text PRIMARY KEY,
    mint_id    text NOT NULL REFERENCES mints (id),
    xdr        text NOT NULL,
    max_ledger integer NOT NULL,
    state      text NOT NULL DEFAULT 'signed',
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX mint_transactions_mint ON mint_transactions (mint_id, created_at DESC);
CREATE INDEX mints_smol_ids ON mints USING gin (smol_ids);
