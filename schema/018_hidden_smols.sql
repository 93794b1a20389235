-- The smols only their owner may see (private, or found unsafe), by owner: whether a signed-in caller owns any is
-- one index probe (smol/repo.py `hides_nothing`): one who owns none sees what anyone sees (api/public_cache.py).
CREATE INDEX smols_hidden_by_address ON smols (address) WHERE NOT (public AND safe);
