-- Expand (docs/migrations.md, expand / contract): accounts.name becomes accounts.display_name
-- over three releases. This file ships with the release whose code reads and writes
-- display_name; the release before it still writes name. A trigger keeps both columns equal
-- whichever release wrote the row, so either release reads what the other wrote.
alter table accounts add column display_name text;

create function keel_accounts_display_name() returns trigger
language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    new.display_name := coalesce(new.display_name, new.name);
    new.name := coalesce(new.name, new.display_name);
  elsif new.display_name is distinct from old.display_name then
    new.name := new.display_name;
  elsif new.name is distinct from old.name then
    new.display_name := new.name;
  end if;
  return new;
end
$$;

create trigger accounts_display_name before insert or update on accounts
  for each row execute function keel_accounts_display_name();

-- The backfill: one statement for a small table; on a large one, batches of ids, each its own
-- short transaction (a file per batch, or a job), so no lock is held for long.
update accounts set display_name = name where display_name is null;
