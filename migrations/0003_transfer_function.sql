-- A transfer's whole unit of work in one statement, so a transfer is three round trips (BEGIN,
-- this, COMMIT) instead of eight, and the account rows stay locked for one round trip, not five.
-- Same semantics as the statements it replaces: the key is claimed in the transaction (or the
-- row already there is returned, locked, so a key swept meanwhile cannot vanish between two
-- statements), both accounts are locked in id order (opposite transfers cannot deadlock), the
-- balance is checked, and the answer is stored under the key. The answer's JSON is built here
-- exactly as the API writes it (`created_at` truncated to milliseconds, as JavaScript's Date
-- reads it), so a replay answers the same body byte for byte.
-- `fresh`: the key was claimed now (by p_owner); otherwise the stored answer is returned and
-- the caller compares `request_hash` (a different body under the same key is a 422).
create function keel_transfer(
  p_key text,
  p_hash text,
  p_owner uuid,
  p_from bigint,
  p_to bigint,
  p_amount bigint,
  p_max bigint
) returns table (fresh boolean, status integer, body text, owner uuid, request_hash text)
language plpgsql as $$
declare
  k idempotency_keys%rowtype;
  b_from bigint;
  b_to bigint;
  t transfers%rowtype;
  v_status integer;
  v_body text;
begin
  insert into idempotency_keys as i (key, request_hash, status, body, owner)
  values (p_key, p_hash, 0, '{}', p_owner)
  on conflict (key) do update set key = excluded.key
  returning i.* into k;
  -- Status 0 exists only inside the transaction that claimed the key: this one, just now.
  if k.status <> 0 or k.owner <> p_owner then
    return query select false, k.status, k.body, k.owner, k.request_hash;
    return;
  end if;

  perform 1 from accounts a where a.id in (p_from, p_to) order by a.id for update;
  select a.balance into b_from from accounts a where a.id = p_from;
  select a.balance into b_to from accounts a where a.id = p_to;
  if b_from is null or b_to is null then
    v_status := 404;
    v_body := json_build_object('error', json_build_object(
      'code', 'not_found',
      'message', format('account %s not found', case when b_from is null then p_from else p_to end)
    ))::text;
  elsif b_from < p_amount then
    v_status := 409;
    v_body := json_build_object('error', json_build_object(
      'code', 'insufficient_funds',
      'message', format('account %s has insufficient funds', p_from)
    ))::text;
  elsif b_to + p_amount > p_max then
    -- The destination would pass the largest amount the API can express (2^53 - 1).
    v_status := 400;
    v_body := json_build_object('error', json_build_object(
      'code', 'invalid_request',
      'message', format('account %s cannot hold more than %s', p_to, p_max)
    ))::text;
  else
    update accounts a set balance = a.balance - p_amount where a.id = p_from;
    update accounts a set balance = a.balance + p_amount where a.id = p_to;
    insert into transfers (from_id, to_id, amount) values (p_from, p_to, p_amount)
      returning * into t;
    v_status := 201;
    v_body := json_build_object(
      'id', t.id,
      'from', t.from_id,
      'to', t.to_id,
      'amount', t.amount,
      'created_at', to_char(t.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    )::text;
  end if;
  update idempotency_keys i set status = v_status, body = v_body where i.key = p_key;
  return query select true, v_status, v_body, p_owner, p_hash;
end
$$;
