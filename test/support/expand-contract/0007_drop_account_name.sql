-- keel:contract 0006_account_display_name.sql
-- Contract: no worker online reads or writes accounts.name any more (the migrate command checks
-- that every worker online ships 0006 and refuses this file otherwise); workers never apply it
-- at boot. The new column takes over the old one's rules.
drop trigger accounts_display_name on accounts;
drop function keel_accounts_display_name();
alter table accounts drop column name;
-- NOT VALID, then VALIDATE: new rows are checked at once. Here both run in this file's
-- transaction (a small table); on a large one the VALIDATE goes in a file of its own, where its
-- scan does not block writes.
alter table accounts add constraint accounts_display_name_check
  check (display_name is not null and char_length(display_name) between 1 and 100) not valid;
alter table accounts validate constraint accounts_display_name_check;
