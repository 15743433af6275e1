-- Generated keys (one request's own retries) expire within minutes, client keys after 48 h:
-- this partial index lets the sweep find expired generated keys without walking the client keys
-- still inside their 48 h.
create index idempotency_keys_generated_created_at_idx on idempotency_keys (created_at)
  where key like 'gen:%';
