#!/usr/bin/env bash
# Installs the pinned Python tools the test suite uses into a git-ignored folder (.tools/ by
# default, or $POLYTAPE_TOOLS), one virtualenv per tool because their pins conflict. Idempotent:
# a venv whose pins are unchanged is reused; and Debian's Chromium (apt-get) when missing, for the
# dashboard's browser test. Prints the environment to export.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${POLYTAPE_TOOLS:-$root/.tools}
mkdir -p "$tools"

# name|pinned requirements
venvs=(
  "pq|duckdb==2.0.0 pyarrow==26.0.1"
  "moto|moto[server]==5.2.5 boto3==1.44.5"   # AWS stand-in for the store's AWS adapter tests
  "cfn|cfn-lint==1.58.0"
  "checkov|checkov==3.3.30"
  "sam|aws-sam-cli==1.170.0"
  "lambda|cargo-lambda==1.9.2 ziglang==0.17.0"
)

install() {
  local name=$1 reqs=$2 stamp="$tools/$1/.pins"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ]; then return 0; fi
  rm -rf "${tools:?}/$name"
  python3 -m venv "$tools/$name"
  # shellcheck disable=SC2086
  "$tools/$name/bin/pip" install -q --disable-pip-version-check $reqs
  echo "$reqs" > "$stamp"
  echo "installed $name: $reqs" >&2
}

# Debian's Chromium and ChromeDriver, for the dashboard's browser test
# (crates/cli/tests/dashboard_browser.rs), when missing and apt-get may install them. Output to
# stderr: stdout is the environment to export.
install_chromium() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  local sudo=()
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)   # a CI runner's passwordless sudo
  fi
  if { [ "$(id -u)" != 0 ] && [ ${#sudo[@]} = 0 ]; } || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium or chromedriver missing and apt-get unavailable: the browser test will skip (or fail with POLYTAPE_REQUIRE_TOOLS=1)" >&2
    return 0
  fi
  { ${sudo[@]+"${sudo[@]}"} apt-get update -qq \
      && ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core; } </dev/null >&2 \
    && echo "installed chromium: $(chromium --version 2>/dev/null)" >&2 \
    || echo "chromium: apt-get install failed (the browser test fails under POLYTAPE_REQUIRE_TOOLS=1)" >&2
}

pids=()
for v in "${venvs[@]}"; do
  install "${v%%|*}" "${v#*|}" & pids+=($!)
done
install_chromium & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done

echo "export POLYTAPE_PYTHON_PQ=$tools/pq/bin/python"
echo "export POLYTAPE_MOTO_SERVER=$tools/moto/bin/moto_server"   # started by infra/test.sh
# template checks (infra/test.sh, crates/store/tests/template.rs) and the Lambda build
echo "export POLYTAPE_PYTHON_SAM=$tools/sam/bin/python POLYTAPE_SAM=$tools/sam/bin/sam"
echo "export POLYTAPE_CFN_LINT=$tools/cfn/bin/cfn-lint POLYTAPE_CHECKOV=$tools/checkov/bin/checkov"
echo "export POLYTAPE_CARGO_LAMBDA=$tools/lambda/bin/cargo-lambda"
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  # the dashboard's browser test
  echo "export POLYTAPE_CHROMIUM=$(command -v chromium) POLYTAPE_CHROMEDRIVER=$(command -v chromedriver)"
fi
