#!/usr/bin/env bash
# Sourced by .ci/run: the Python packages the docs' walkthroughs import (the
# forwarding walkthrough's receiver checks signatures with standardwebhooks),
# in a venv of their own, first on PATH for the tests.
STANDARDWEBHOOKS_VERSION=1.3.0
WALKTHROUGH_VENV="$(realpath -m "${CARGO_TARGET_DIR:-target}")/walkthrough-venv"
if ! "$WALKTHROUGH_VENV/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('standardwebhooks') != '$STANDARDWEBHOOKS_VERSION')" 2>/dev/null; then
  echo "walkthroughs: installing standardwebhooks $STANDARDWEBHOOKS_VERSION into $WALKTHROUGH_VENV"
  rm -rf "$WALKTHROUGH_VENV"
  python3 -m venv "$WALKTHROUGH_VENV"
  "$WALKTHROUGH_VENV/bin/pip" install --quiet --disable-pip-version-check "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
fi
export PATH="$WALKTHROUGH_VENV/bin:$PATH"
