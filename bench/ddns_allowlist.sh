#!/usr/bin/env bash
# Run bench/ddns_allowlist.py as root in a throw-away lab container (its own ufw and network namespace, no host changes).
# Usage: bench/ddns_allowlist.sh [--names 50] [--runs 3] [--delay 0.2]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/tests/lab/env.sh"
mkdir -p "$root/.cache/bench"
name=jfh-bench-ddns-$$
podman run -d --rm --name "$name" --privileged \
  -v "$root/plugins/module_utils:/bench/ansible_collections/homelab/jellyfin_hardening/plugins/module_utils:ro" \
  -v "$root/bench:/bench/bench:ro" -v "$root/tests/lab:/bench/tests/lab:ro" localhost/jfh-lab:debian12 sleep 3600 >/dev/null
trap 'podman rm -f -t 0 "$name" >/dev/null' EXIT
podman exec "$name" sh -c 'apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ufw >/dev/null'
podman exec -e JFH_COLLECTIONS=/bench "$name" python3 /bench/bench/ddns_allowlist.py "$@" | tee "$root/.cache/bench/ddns-allowlist.txt"
