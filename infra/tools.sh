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
