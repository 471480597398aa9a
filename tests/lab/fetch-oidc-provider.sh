#!/usr/bin/env bash
# Fetches the wheels of the lab's OpenID Connect provider (oidc-provider-mock, from the package index)
# for the trixie lab container's Python, so the container installs them offline. Cached under
# .cache/wheels/oidc-provider: a second run does nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
requirements=$root/tests/lab/oidc-provider-requirements.txt
out=$root/.cache/wheels/oidc-provider
stamp=$out/.fetched-$(sha256sum "$requirements" | cut -c1-12)
[ -e "$stamp" ] && exit 0
rm -rf "$out" && mkdir -p "$out"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.13 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -r "$requirements" -d "$out"
touch "$stamp"
