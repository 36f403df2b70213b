-- API keys (x-api-key) become values of their own, distinct from SigV4 secrets.
-- `secret_sha256` now holds the SHA-256 of a key's API key. Keys made before this held
-- the hash of their SigV4 secret there, so a stolen secret worked as an x-api-key too:
-- those keys keep signing requests but get no API key (create a new key for one).
UPDATE access_keys SET secret_sha256 = '';
