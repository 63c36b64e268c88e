#!/usr/bin/env bash
# Runs every check and test: formatting, clippy (warnings are errors), unit tests, and the
# cluster-level tests that start real processes (ours and the real etcd 3.4.23 referee).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
./scripts/deps.sh --test
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$( [ -w /var/cache ] && echo /var/cache/retcd-target || echo "$here/target")}
export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo build --workspace --bins --all-targets
cargo clippy --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --no-fail-fast -- --test-threads=2 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo "all tests: ${passed} passed, ${failed} failed"
exit "$status"
