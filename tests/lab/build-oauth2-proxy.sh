#!/usr/bin/env bash
# Builds oauth2-proxy from its Go module and packs it as the upstream release is packed (dist.sh):
# oauth2-proxy-VERSION.linux-ARCH.tar.gz holding oauth2-proxy-VERSION.linux-ARCH/oauth2-proxy, and its
# "-sha256sum.txt". The oauth2_proxy scenario serves both from a lab container, so the role's real
# download-and-verify path runs. Cached under .cache/oauth2-proxy/VERSION: a second run does nothing.
set -euo pipefail
version=${1:-v7.15.6}
arch=amd64
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/.cache/oauth2-proxy/$version
name=oauth2-proxy-$version.linux-$arch
[ -s "$out/$name.tar.gz-sha256sum.txt" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/$name" "$out"
echo "building oauth2-proxy $version from its Go module"
CGO_ENABLED=0 GOBIN="$work/$name" GOFLAGS=-modcacherw go install -trimpath \
  -ldflags "-s -w -X github.com/oauth2-proxy/oauth2-proxy/v7/pkg/version.VERSION=$version" \
  "github.com/oauth2-proxy/oauth2-proxy/v7@$version"
tar -C "$work" --owner=0 --group=0 -czf "$work/$name.tar.gz" "$name"
(cd "$work" && sha256sum "$name.tar.gz" >"$name.tar.gz-sha256sum.txt")
mv "$work/$name.tar.gz" "$work/$name.tar.gz-sha256sum.txt" "$out/"
