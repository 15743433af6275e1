#!/usr/bin/env bash
# `npm run check`: build, typecheck, lint and format check, side by side (each is a separate
# process, mostly single-threaded, so on two cores they finish in about half the time of one after
# another). Each step's output is printed as a block once it ends; the exit code is non-zero if
# any step failed, and the failed steps are named last.
set -uo pipefail
cd "$(dirname "$0")/.."

steps=(build typecheck lint format:check)
dir="$(mktemp -d -t keel-check-XXXXXX)"
trap 'rm -rf "$dir"' EXIT

declare -A pids
for s in "${steps[@]}"; do
  npm run -s "$s" >"$dir/$s.log" 2>&1 &
  pids[$s]=$!
done

failed=()
for s in "${steps[@]}"; do
  if wait "${pids[$s]}"; then
    echo "check: $s ok"
  else
    failed+=("$s")
    echo "check: $s FAILED"
  fi
  sed 's/^/  /' "$dir/$s.log"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "check failed: ${failed[*]}"
  exit 1
fi
