#!/usr/bin/env bash
# What the test suite needs beyond Node and npm. `npm test` runs this first (pretest), and
# .ci/run uses it too. Idempotent: with everything present it only checks, in milliseconds.
#
# As root on Debian/Ubuntu (apt-get): creates the `postgres` system user (Postgres and PgBouncer
# refuse to run as root; the tests run them as that user) and installs the missing packages,
# without starting their services. Otherwise it prints one line per missing tool, saying how to
# get it; the tests that need that tool skip (or fail) with the same words. Never fails the run:
# the tests decide. KEEL_TEST_PREREQS=check only checks (no user, no packages).
#
#   tool              Debian package   tests
#   pgbouncer         pgbouncer        resilience-pgbouncer, diagnose-pgbouncer
#   promtool          prometheus       metrics-valid, deploy/prometheus
#   systemd-analyze   systemd          deploy/vm
#   patch             patch            driver-patch-check
#   openssl           openssl          metrics-tls (a server certificate)
#
# A container engine (docker, docker-compose) is not installed here: starting a daemon is more
# than a test run should do. Without one the deploy/docker tests skip with one line each and the
# Postgres fixture uses local clusters; `bash .ci/run` (as root) installs and starts one.
set -u

have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

# tool package
TOOLS="pgbouncer:pgbouncer promtool:prometheus systemd-analyze:systemd patch:patch openssl:openssl"
missing_tools=""
missing_pkgs=""
for pair in $TOOLS; do
  tool="${pair%%:*}"
  pkg="${pair##*:}"
  if ! have "$tool"; then
    missing_tools="$missing_tools $tool"
    missing_pkgs="$missing_pkgs $pkg"
  fi
done

is_root=0
[ "$(id -u)" = 0 ] && is_root=1
can_install=0
[ "$is_root" = 1 ] && [ "${KEEL_TEST_PREREQS:-install}" != check ] && have apt-get && can_install=1

if [ "$is_root" = 1 ] && ! id -u postgres >/dev/null 2>&1; then
  if [ "${KEEL_TEST_PREREQS:-install}" != check ] &&
    useradd --system --user-group --no-create-home --home-dir /nonexistent postgres; then
    echo "test prerequisites: created the \"postgres\" system user (Postgres and PgBouncer refuse root)"
  else
    echo "test prerequisites: no \"postgres\" system user, and running as root: create it" \
      "(useradd --system --user-group postgres); the fixtures try again themselves"
  fi
fi

if [ -n "$missing_pkgs" ] && [ "$can_install" = 1 ]; then
  echo "test prerequisites: installing Debian packages:$missing_pkgs (services not started)"
  # A policy-rc.d of our own keeps the packages' daemons (pgbouncer, prometheus) from starting;
  # one that is already there is the machine's and stays as it is.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  log="$(mktemp -t keel-test-prereqs-XXXXXX)"
  # shellcheck disable=SC2086
  if ! { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      $missing_pkgs; } >"$log" 2>&1; then
    echo "test prerequisites: apt-get failed; its output ends:"
    tail -n 5 "$log"
  fi
  rm -f "$log"
  [ "$own_policy" = 1 ] && rm -f "$policy"
  missing_tools=""
  for pair in $TOOLS; do
    have "${pair%%:*}" || missing_tools="$missing_tools ${pair%%:*}"
  done
fi

for tool in $missing_tools; do
  for pair in $TOOLS; do
    [ "${pair%%:*}" = "$tool" ] || continue
    how="apt-get install ${pair##*:}"
    [ "$is_root" = 1 ] || how="sudo $how (or run npm test as root once)"
    echo "test prerequisites: $tool is missing: its tests skip; to run them: $how"
  done
done

if ! { have docker && timeout 10 docker info >/dev/null 2>&1; }; then
  echo "test prerequisites: no container engine answers: the deploy/docker tests skip and" \
    "Postgres runs as local clusters; for them: a running docker with docker-compose" \
    "(or bash .ci/run as root, which installs and starts one)"
fi
exit 0
