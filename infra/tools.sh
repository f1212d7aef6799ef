#!/usr/bin/env bash
# Installs the pinned Python tools the test suite uses into a git-ignored folder (.tools/ by
# default, or $POLYTAPE_TOOLS), one virtualenv per tool because their pins conflict. Idempotent:
# a venv whose pins are unchanged is reused. Prints the environment to export.
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

pids=()
for v in "${venvs[@]}"; do
  install "${v%%|*}" "${v#*|}" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

echo "export POLYTAPE_PYTHON_PQ=$tools/pq/bin/python"
echo "export POLYTAPE_MOTO_SERVER=$tools/moto/bin/moto_server"   # started by infra/test.sh
# template checks (infra/test.sh, crates/store/tests/template.rs) and the Lambda build
echo "export POLYTAPE_PYTHON_SAM=$tools/sam/bin/python POLYTAPE_SAM=$tools/sam/bin/sam"
echo "export POLYTAPE_CFN_LINT=$tools/cfn/bin/cfn-lint POLYTAPE_CHECKOV=$tools/checkov/bin/checkov"
echo "export POLYTAPE_CARGO_LAMBDA=$tools/lambda/bin/cargo-lambda"
