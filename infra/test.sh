#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the pinned tools it needs (into .tools/),
# checks formatting and lints, runs every test (unit, fixture, simulator end-to-end, Parquet
# read back by DuckDB); clippy --all-targets also compiles the benchmarks. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Reuse a build cache outside the clone when there is a home to keep it in.
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -n "${HOME:-}" ] && mkdir -p "$HOME/.cache/polytape/target" 2>/dev/null; then
  export CARGO_TARGET_DIR="$HOME/.cache/polytape/target"
fi

step() { printf '\n== %s\n' "$*"; }

step "tools (pinned, into ${POLYTAPE_TOOLS:-.tools})"
eval "$(infra/tools.sh)"
export POLYTAPE_REQUIRE_TOOLS=1   # tests that need a tool fail, rather than skip, when it is missing

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "doc tests"
cargo test --workspace --locked --doc

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
