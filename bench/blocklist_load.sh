#!/usr/bin/env bash
# Run bench/blocklist_load.py as root in a throw-away lab container (real ipset and nftables, no host changes).
# Usage: bench/blocklist_load.sh [--sizes 4500,100000] [--runs 5] [--no-loop]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/tests/lab/env.sh"
name=jfh-bench-blocklist-$$
podman run -d --rm --name "$name" --privileged \
  -v "$root/plugins/module_utils:/bench/ansible_collections/homelab/jellyfin_hardening/plugins/module_utils:ro" \
  -v "$root/bench:/bench/bench:ro" localhost/jfh-lab:debian12 sleep 3600 >/dev/null
trap 'podman rm -f "$name" >/dev/null' EXIT
podman exec "$name" sh -c 'apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ipset nftables >/dev/null'
podman exec -e JFH_COLLECTIONS=/bench "$name" python3 /bench/bench/blocklist_load.py "$@" | tee "$root/.cache/bench/blocklist-load.txt"
