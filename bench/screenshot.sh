#!/usr/bin/env bash
# Renders a benchmark report in headless Chromium (no network, throwaway profile) and saves a PNG.
#   bench/screenshot.sh [report.html] [out.png]
#   bench/screenshot.sh --scale [report.html] [out.png]
# Defaults: the newest bench/results/faults-*.html -> bench/faults-report.png; with --scale the
# newest bench/results/scale-*.html -> bench/scale-chart.png (its two chart panels).
# Needs Debian's `chromium` (apt-get install -y chromium).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kind=faults png_default="$here/faults-report.png" size=1280,800 run="--faults"
if [ "${1:-}" = "--scale" ]; then
  shift
  kind=scale png_default="$here/scale-chart.png" size=1020,720 run="--scale"
fi
html="${1:-$(ls -t "$here"/results/"$kind"-*.html 2>/dev/null | head -n 1)}"
png="${2:-$png_default}"
[ -n "$html" ] && [ -f "$html" ] || { echo "no report to render (run: npm run bench -- $run)" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "chromium not found (apt-get install -y chromium)" >&2; exit 3; }

profile="$(mktemp -d "${TMPDIR:-/tmp}/keel-chromium-XXXXXX")"
trap 'rm -rf "$profile"' EXIT
html_abs="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
# timeout bounds a browser that hangs; the page itself has no scripts and no external resources.
timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
  --user-data-dir="$profile" --window-size="$size" --screenshot="$png" \
  "file://$html_abs" >/dev/null 2>&1
[ -s "$png" ] || { echo "chromium wrote no screenshot" >&2; exit 4; }
echo "$png"
