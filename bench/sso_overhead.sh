#!/usr/bin/env bash
# Time the SSO setup's paths on the sso lab's two Jellyfin hosts (auth_request on sso-nginx, upstream on
# sso-upstream). Needs the lab up: `source tests/lab/env.sh && molecule converge -s sso` (then `molecule destroy -s sso`).
# Usage: bench/sso_overhead.sh [--requests 400] [--runs 3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/tests/lab/env.sh"
mkdir -p "$root/.cache/bench"
for host in sso-nginx sso-upstream; do
  cookie=$(podman exec sso-attacker ssoclient login "https://$host" --email alice@friends.example |
    python3 -c 'import json, sys; c = json.load(sys.stdin)["cookies"]; print("_oauth2_proxy=" + c["_oauth2_proxy"])')
  podman cp "$root/bench/sso_overhead.py" "$host:/tmp/sso_overhead.py"
  printf '%s ' "$host"
  podman exec "$host" python3 /tmp/sso_overhead.py --host "$host" --cookie "$cookie" "$@"
done | tee "$root/.cache/bench/sso-overhead.txt"
