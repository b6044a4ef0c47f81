#!/usr/bin/env bash
# The dashboard in a real browser: installs what it needs (Debian's chromium
# and Playwright for Python, which drives that browser; no browser download),
# builds ibiki-server and runs e2e/dashboard.py against it. Screenshots are
# written to docs/src/screenshots/.
#
#   .ci/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The version this step was written and checked with.
PLAYWRIGHT_VERSION=1.65.2
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
VENV="$TARGET_DIR/e2e-venv"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  echo "e2e: installing chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

if ! "$VENV/bin/python" -c "import playwright, sys; from importlib.metadata import version; sys.exit(version('playwright') != '$PLAYWRIGHT_VERSION')" 2>/dev/null; then
  echo "e2e: installing playwright $PLAYWRIGHT_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION"
fi

cargo build --quiet -p ibiki-examples --bin ibiki-server
CHROMIUM="$CHROMIUM" E2E_SERVER_LOG="$TARGET_DIR/e2e-server.log" \
  "$VENV/bin/python" e2e/dashboard.py "$TARGET_DIR/debug/ibiki-server"
