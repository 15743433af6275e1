#!/usr/bin/env bash
# edoburu/pgbouncer's contract: unless /etc/pgbouncer/pgbouncer.ini is mounted, write it (and
# userlist.txt) from the environment. DATABASE_URL (postgres://user:pass@host:port/db) fills
# DB_USER, DB_PASSWORD, DB_HOST, DB_PORT and DB_NAME; any setting below is taken from the
# variable of its upper-case name (POOL_MODE -> pool_mode).
set -euo pipefail
dir=/etc/pgbouncer
ini="$dir/pgbouncer.ini"

if [ -n "${DATABASE_URL:-}" ]; then
  rest="${DATABASE_URL#*://}"
  creds="${rest%%@*}"
  hostpart="${rest#*@}"
  DB_USER="${DB_USER:-${creds%%:*}}"
  if [ "$creds" != "${creds#*:}" ]; then DB_PASSWORD="${DB_PASSWORD:-${creds#*:}}"; fi
  hostport="${hostpart%%/*}"
  DB_HOST="${DB_HOST:-${hostport%%:*}}"
  if [ "$hostport" != "${hostport#*:}" ]; then DB_PORT="${DB_PORT:-${hostport#*:}}"; fi
  if [ "$hostpart" != "${hostpart#*/}" ]; then DB_NAME="${DB_NAME:-${hostpart#*/}}"; fi
  DB_NAME="${DB_NAME%%\?*}"
fi

if [ ! -f "$ini" ]; then
  : "${DB_HOST:?set DB_HOST or DATABASE_URL}"
  AUTH_TYPE="${AUTH_TYPE:-md5}"
  auth_file="${AUTH_FILE:-$dir/userlist.txt}"
  if [ -n "${DB_USER:-}" ] && [ -n "${DB_PASSWORD:-}" ] && [ ! -f "$auth_file" ]; then
    pass="$DB_PASSWORD"
    case "$AUTH_TYPE:$pass" in
      plain:* | scram-sha-256:* | *:md5* | *:SCRAM-SHA-256*) ;;
      *) pass="md5$(printf '%s%s' "$DB_PASSWORD" "$DB_USER" | md5sum | cut -d' ' -f1)" ;;
    esac
    printf '"%s" "%s"\n' "$DB_USER" "$pass" >"$auth_file"
  fi
  {
    echo '[databases]'
    echo "${DB_NAME:-*} = host=$DB_HOST port=${DB_PORT:-5432}${DB_USER:+ user=$DB_USER}"
    echo '[pgbouncer]'
    echo "listen_addr = ${LISTEN_ADDR:-0.0.0.0}"
    echo "listen_port = ${LISTEN_PORT:-5432}"
    echo "unix_socket_dir = ${UNIX_SOCKET_DIR:-}"
    echo "auth_type = $AUTH_TYPE"
    echo "auth_file = $auth_file"
    for key in admin_users stats_users auth_query auth_user pool_mode max_client_conn \
      default_pool_size min_pool_size reserve_pool_size reserve_pool_timeout max_db_connections \
      max_user_connections server_round_robin ignore_startup_parameters disable_pqexec \
      application_name_add_host server_reset_query server_reset_query_always server_check_query \
      server_check_delay server_lifetime server_idle_timeout server_connect_timeout \
      server_login_retry client_login_timeout query_timeout query_wait_timeout \
      client_idle_timeout idle_transaction_timeout max_prepared_statements log_connections \
      log_disconnections log_pooler_errors stats_period verbose client_tls_sslmode \
      client_tls_key_file client_tls_cert_file client_tls_ca_file server_tls_sslmode \
      server_tls_ca_file server_tls_key_file server_tls_cert_file tcp_keepalive; do
      var="${key^^}"
      if [ -n "${!var:-}" ]; then echo "$key = ${!var}"; fi
    done
  } >"$ini"
  echo "pgbouncer stand-in: wrote $ini from the environment"
fi

exec "$@"
