-- Accounts hold integer minor units; the CHECKs are the last line of defence for the invariants.
create table accounts (
  id bigint generated always as identity primary key,
  name text not null check (char_length(name) between 1 and 100),
  balance bigint not null check (balance >= 0 and balance <= 9007199254740991),
  -- The balance at creation: sum(balance) = sum(opening_balance) is the ledger's invariant.
  opening_balance bigint not null check (opening_balance >= 0),
  created_at timestamptz not null default now(),
  -- Generated per request: a retry after an ambiguous COMMIT finds its own row instead of
  -- opening a second account.
  creation_key uuid not null unique
);

create table transfers (
  id bigint generated always as identity primary key,
  from_id bigint not null references accounts (id),
  to_id bigint not null references accounts (id),
  amount bigint not null check (amount > 0 and amount <= 9007199254740991),
  created_at timestamptz not null default now(),
  check (from_id <> to_id)
);

create index transfers_from_id_idx on transfers (from_id, id);
create index transfers_to_id_idx on transfers (to_id, id);

-- One row per Idempotency-Key (client-sent or generated per request), written in the same
-- transaction as the transfer it answers, so a retry after an ambiguous COMMIT finds it.
create table idempotency_keys (
  key text primary key,
  request_hash text not null,
  status integer not null,
  -- The JSON text as first sent: a replay answers byte-for-byte the same body.
  body text not null,
  -- The request that wrote the row: its own retry is not a replay for the client.
  owner uuid not null,
  created_at timestamptz not null default now()
);

create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
