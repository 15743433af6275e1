-- A transfer's JSON is written in one place, here: keel_transfer_json. keel_transfer_v2 stores
-- it under the key for a 201 (in its one statement: the id and created_at exist only there),
-- and the reads (GET /api/transfers/:id, an account's list; src/ledger/transfers.ts) select it
-- too, so a replay, a read and the first answer cannot drift apart. `created_at` is truncated
-- to milliseconds, as JavaScript's Date reads it.
create function keel_transfer_json(t transfers) returns text
language sql stable as $$
  select json_build_object(
    'id', t.id,
    'from', t.from_id,
    'to', t.to_id,
    'amount', t.amount,
    'created_at', to_char(t.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
  )::text
$$;

-- keel_transfer_v2 (0004) as it was, its 201 body now from keel_transfer_json: the same bytes,
-- so workers of the previous release keep calling it unchanged during a rolling reload.
create or replace function keel_transfer_v2(
  p_key text,
  p_hash text,
  p_owner uuid,
  p_from bigint,
  p_to bigint,
  p_amount bigint,
  p_max bigint,
  p_refusals text
) returns table (
  fresh boolean,
  status integer,
  body text,
  owner uuid,
  request_hash text,
  refusal text
)
language plpgsql as $$
declare
  k idempotency_keys%rowtype;
  b_from bigint;
  b_to bigint;
  t transfers%rowtype;
  v_refusal text;
  v_answer json;
  v_status integer;
  v_body text;
begin
  insert into idempotency_keys as i (key, request_hash, status, body, owner)
  values (p_key, p_hash, 0, '{}', p_owner)
  on conflict (key) do update set key = excluded.key
  returning i.* into k;
  -- Status 0 exists only inside the transaction that claimed the key: this one, just now.
  if k.status <> 0 or k.owner <> p_owner then
    return query select false, k.status, k.body, k.owner, k.request_hash, null::text;
    return;
  end if;

  perform 1 from accounts a where a.id in (p_from, p_to) order by a.id for update;
  select a.balance into b_from from accounts a where a.id = p_from;
  select a.balance into b_to from accounts a where a.id = p_to;
  if b_from is null then
    v_refusal := 'from_not_found';
  elsif b_to is null then
    v_refusal := 'to_not_found';
  elsif b_from < p_amount then
    v_refusal := 'insufficient_funds';
  elsif b_to + p_amount > p_max then
    v_refusal := 'balance_limit';
  end if;
  if v_refusal is not null then
    v_answer := p_refusals::json -> v_refusal;
    v_status := (v_answer ->> 'status')::integer;
    v_body := (v_answer -> 'body')::text;
    if v_status is null or v_body is null then
      raise exception 'keel_transfer_v2: no answer given for refusal %', v_refusal;
    end if;
  else
    update accounts a set balance = a.balance - p_amount where a.id = p_from;
    update accounts a set balance = a.balance + p_amount where a.id = p_to;
    insert into transfers (from_id, to_id, amount) values (p_from, p_to, p_amount)
      returning * into t;
    v_status := 201;
    v_body := keel_transfer_json(t);
  end if;
  update idempotency_keys i set status = v_status, body = v_body where i.key = p_key;
  return query select true, v_status, v_body, p_owner, p_hash, v_refusal;
end
$$;

-- keel_transfer (0003) wrote its bodies in SQL; no worker has called it since 0004's release
-- (a rolling reload spans one release). The answers it stored stay in idempotency_keys and
-- replay as they are.
drop function keel_transfer(text, text, uuid, bigint, bigint, bigint, bigint);
