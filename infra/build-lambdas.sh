#!/usr/bin/env bash
# Builds the five Lambda binaries with cargo-lambda into build/lambda/<binary>/bootstrap, where
# template.yaml's CodeUri points; then `sam deploy` (no `sam build`). One cargo invocation, so the
# dependencies shared by the functions compile once.
#
#   infra/build-lambdas.sh              x86_64 (deploy with --parameter-overrides Architecture=x86_64)
#   ARCH=arm64 infra/build-lambdas.sh   arm64, the template's default: needs the Rust target
#                                       aarch64-unknown-linux-gnu (rustup target add …) and zig,
#                                       which the pinned cargo-lambda venv brings
#
# cargo-lambda comes from infra/tools.sh (POLYTAPE_CARGO_LAMBDA) or PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

arch=${ARCH:-x86_64}
case "$arch" in
  x86_64) arch_flag=() ;;
  arm64) arch_flag=(--arm64) ;;
  *) echo "ARCH must be x86_64 or arm64, not $arch" >&2; exit 2 ;;
esac

cargo_lambda=${POLYTAPE_CARGO_LAMBDA:-}
if [ -z "$cargo_lambda" ]; then
  if command -v cargo-lambda >/dev/null 2>&1; then
    cargo_lambda=cargo-lambda
  else
    eval "$(infra/tools.sh)"
    cargo_lambda=$POLYTAPE_CARGO_LAMBDA
  fi
fi
# cargo-lambda finds zig (for cross builds) through the venv's python3.
PATH="$(dirname "$(command -v "$cargo_lambda")"):$PATH"
export PATH

functions=(discovery snapshot maintenance status trades)
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done

"$cargo_lambda" lambda build --release --locked "${arch_flag[@]}" \
  --lambda-dir build/lambda "${packages[@]}"

# provided.al2023 has glibc 2.34; the host here may have a newer one, and a C dependency built
# against it could ask for a symbol Lambda lacks (the function would then fail to start). If so,
# build with zig for an older glibc: --compiler cargo-zigbuild --target <triple>.2.34.
al2023_glibc=2.34
for f in "${functions[@]}"; do
  bin="build/lambda/$f/bootstrap"
  test -x "$bin" || { echo "missing $bin" >&2; exit 1; }
  if command -v objdump >/dev/null 2>&1; then
    need=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$al2023_glibc" | sort -V | tail -1)" != "$al2023_glibc" ]; then
      echo "$bin needs glibc $need; provided.al2023 has $al2023_glibc" >&2
      exit 1
    fi
  fi
done
echo "built ${functions[*]} ($arch) into build/lambda/"
