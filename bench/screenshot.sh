#!/usr/bin/env bash
# Renders a fault report in headless Chromium (no network, throwaway profile) and saves a PNG.
#   bench/screenshot.sh [report.html] [out.png]
# Defaults: the newest bench/results/faults-*.html -> bench/faults-report.png.
# Needs Debian's `chromium` (apt-get install -y chromium).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
html="${1:-$(ls -t "$here"/results/faults-*.html 2>/dev/null | head -n 1)}"
png="${2:-$here/faults-report.png}"
[ -n "$html" ] && [ -f "$html" ] || { echo "no report to render (run: npm run bench -- --faults)" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "chromium not found (apt-get install -y chromium)" >&2; exit 3; }

profile="$(mktemp -d "${TMPDIR:-/tmp}/keel-chromium-XXXXXX")"
trap 'rm -rf "$profile"' EXIT
html_abs="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
# timeout bounds a browser that hangs; the page itself has no scripts and no external resources.
timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
  --user-data-dir="$profile" --window-size=1280,800 --screenshot="$png" \
  "file://$html_abs" >/dev/null 2>&1
[ -s "$png" ] || { echo "chromium wrote no screenshot" >&2; exit 4; }
echo "$png"
