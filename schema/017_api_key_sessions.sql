-- An API key lives no longer than the sign-in that made it: the passkey binding and its generation (016). Logging
-- out everywhere, or the wallet's real holder taking the binding over, ends the keys its sessions made too (a leaked
-- session could otherwise leave a key behind that outlives it). Keys made without a passkey (an operator's token,
-- `smol key create`) have neither and live until revoked.
ALTER TABLE api_keys ADD COLUMN passkey text;
ALTER TABLE api_keys ADD COLUMN generation integer;
