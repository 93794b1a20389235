-- Passkeys bound to the address (contract id) they were registered for, and the WebAuthn challenges already
-- used: an assertion can be accepted once, even from authenticators whose signature counter stays at 0.
CREATE TABLE passkeys (
    credential_id text PRIMARY KEY,
    address       text NOT NULL,
    username      text NOT NULL DEFAULT '',
    public_key    bytea NOT NULL,
    sign_count    bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX passkeys_address ON passkeys (address);

CREATE TABLE used_challenges (
    challenge text PRIMARY KEY,
    used_at   timestamptz NOT NULL DEFAULT now()
);
