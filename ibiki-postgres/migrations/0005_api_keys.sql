-- Clients' API keys (ibiki_core::KeyStore): the SHA-256 of each key and its
-- first characters, never the key. A revoked key's row is deleted, so every
-- server sharing the database stops accepting it with its next lookup.
CREATE TABLE api_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id text COLLATE "C" NOT NULL CHECK (client_id <> ''),
    -- Looked up on every request a key signs: the unique index is the lookup.
    digest bytea NOT NULL UNIQUE CHECK (octet_length(digest) = 32),
    prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Renewed at most once a minute (KEY_USE_RESOLUTION), by the lookup.
    last_used_at timestamptz
);

-- A client's keys, oldest first.
CREATE INDEX api_keys_client_idx ON api_keys (client_id, id);
