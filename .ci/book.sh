#!/usr/bin/env bash
# The guide: builds docs/ with mdBook into target/book, then checks every
# link of the README, the crates' READMEs and the guide, in the markdown and
# in the built HTML, without the network (scripts/check-links.py). mdBook is
# installed with cargo, at the pinned version, only when that version is not
# installed already.
#
#   .ci/book.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The version this step was written and checked with.
MDBOOK_VERSION=0.5.4
MDBOOK="${CARGO_HOME:-$HOME/.cargo}/bin/mdbook"

if ! "$MDBOOK" --version 2>/dev/null | grep -qx "mdbook v$MDBOOK_VERSION"; then
  echo "book: installing mdbook $MDBOOK_VERSION"
  # Without the live-reload server and file watcher: only `build` is needed.
  cargo install mdbook --locked --version "$MDBOOK_VERSION" \
    --no-default-features --features search
fi

mkdir -p target
rm -rf target/book
"$MDBOOK" build docs 2>&1 | tee target/book-build.log
# A warning of mdBook (a missing file, a bad summary entry) fails the step.
if grep -E '^\s*(WARN|ERROR)' target/book-build.log; then
  echo "book: mdbook warned (above)" >&2
  exit 1
fi
python3 scripts/check-links.py target/book
