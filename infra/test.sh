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
eval "$(infra/tools.sh)"   # also Debian's chromium + chromedriver (apt-get; POLYTAPE_CHROMIUM, POLYTAPE_CHROMEDRIVER)
export POLYTAPE_REQUIRE_TOOLS=1   # tests that need a tool fail, rather than skip, when it is missing
# The dashboard's browser test (crates/cli/tests/dashboard_browser.rs) runs headless Chromium with
# a fresh profile under its temporary directory; it needs no display, only a writable TMPDIR.
export TMPDIR=${TMPDIR:-/tmp}

# --- moto: a local AWS (DynamoDB, S3, SQS on one port) for the store's AWS adapter tests ---
# Starts the pinned moto server on a free 127.0.0.1 port, waits for it, exports
# POLYTAPE_MOTO_URL, and stops it when this script exits.
start_moto() {
  local port log pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log=$(mktemp)
  "$POLYTAPE_MOTO_SERVER" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  pid=$!
  trap 'kill '"$pid"' 2>/dev/null || true; rm -f '"$log" EXIT
  for _ in $(seq 1 100); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
      export POLYTAPE_MOTO_URL="http://127.0.0.1:$port"
      echo "moto on $POLYTAPE_MOTO_URL"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log"; echo "moto did not start" >&2; return 1
}
step "moto (local AWS for the AWS adapter tests)"
start_moto

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings   # --all-features: the AWS adapters too

# --- AWS template and Lambda build (offline: pinned tools from infra/tools.sh, no AWS account) ---
# Runs a step's command quietly: its output is shown only when it fails.
quiet() {
  local log; log=$(mktemp)
  if "$@" >"$log" 2>&1; then rm -f "$log"; else local rc=$?; cat "$log"; rm -f "$log"; return "$rc"; fi
}
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} \
  CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE

step "lambda build (cargo lambda build --release, ${ARCH:-x86_64}; arm64 needs the aarch64 target)"
quiet infra/build-lambdas.sh

step "template: cfn-lint (as written and SAM-expanded), sam validate --lint, checkov"
expanded=$(mktemp -d)
quiet "$POLYTAPE_PYTHON_SAM" infra/checks/sam2cfn.py template.yaml "$expanded/expanded.json"
quiet "$POLYTAPE_CFN_LINT" template.yaml "$expanded/expanded.json"
rm -rf "$expanded"
quiet "$POLYTAPE_SAM" validate --lint -t template.yaml
quiet "$POLYTAPE_PYTHON_SAM" infra/checks/checkov_skips.py template.yaml
quiet "$POLYTAPE_CHECKOV" -f template.yaml --framework cloudformation --skip-download --compact --quiet
echo "template clean"

step "doc tests"
cargo test --workspace --all-features --locked --doc

step "function binaries (functions/e2e/tests/watch.rs runs them under cargo lambda watch)"
# The same `cargo build --bin …` the test runs (its features, not --all-features), done here so
# that the test finds them fresh instead of compiling while other tests run.
cargo build --locked --bin discovery --bin snapshot --bin maintenance --bin status --bin trades

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast
else
  cargo test --workspace --all-features --locked --no-fail-fast
fi
