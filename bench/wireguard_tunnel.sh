#!/usr/bin/env bash
# Throughput and latency through a wireguard-go tunnel between two throw-away lab containers, against the same
# path without the tunnel, measured in the same run. This is the overhead users without the kernel module see.
# Usage: bench/wireguard_tunnel.sh [--runs 3] [--seconds 5]
set -euo pipefail
runs=3 seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--seconds S]" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9]$ ]] || { echo "--runs takes 1-9" >&2; exit 2; }
[[ $seconds =~ ^[1-9][0-9]?$ && $seconds -le 30 ]] || { echo "--seconds takes 1-30" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/tests/lab/env.sh"
mkdir -p "$root/.cache/bench"
net=jfh-bench-wg-$$ a=jfh-bench-wg-a-$$ b=jfh-bench-wg-b-$$
cleanup() { podman rm -f -t 0 "$a" "$b" >/dev/null 2>&1 || true; podman network rm -f "$net" >/dev/null 2>&1 || true; }
trap cleanup EXIT
podman network create "$net" >/dev/null
for c in "$a" "$b"; do
  podman run -d --rm --name "$c" --network "$net" --privileged localhost/jfh-lab:debian12 sleep 3600 >/dev/null
  podman exec "$c" sh -c 'apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends wireguard-tools wireguard-go iperf3 iputils-ping >/dev/null 2>&1'
  podman exec "$c" sh -c 'umask 077 && wg genkey > /etc/wireguard/k && wg pubkey < /etc/wireguard/k > /etc/wireguard/pub'
done
ip_of() { podman exec "$1" sh -c "ip -4 -o addr show dev eth0 | sed -E 's/.*inet ([0-9.]+).*/\1/'"; }
a_ip=$(ip_of "$a") b_ip=$(ip_of "$b")
tunnel() { # container, own tunnel address, peer container, peer underlay address, peer tunnel address
  local peer_pub; peer_pub=$(podman exec "$3" cat /etc/wireguard/pub)
  podman exec "$1" sh -c "printf '[Interface]\nAddress = $2/24\nListenPort = 51820\nPostUp = wg set %%i private-key /etc/wireguard/k\n\n[Peer]\nPublicKey = $peer_pub\nEndpoint = $4:51820\nAllowedIPs = $5/32\n' > /etc/wireguard/wg0.conf && chmod 600 /etc/wireguard/wg0.conf && WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up wg0 >/dev/null 2>&1"
}
tunnel "$a" 10.99.0.1 "$b" "$b_ip" 10.99.0.2
tunnel "$b" 10.99.0.2 "$a" "$a_ip" 10.99.0.1
podman exec "$b" iperf3 -s -D >/dev/null
podman exec "$a" ping -c 3 -W 2 10.99.0.2 >/dev/null
throughput() { podman exec "$a" iperf3 -c "$1" -t "$seconds" -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6)'; }
latency() { podman exec "$a" ping -q -c 200 -i 0.01 "$1" | sed -nE 's#.* = [0-9.]+/([0-9.]+)/.*#\1#p'; }
results=$(mktemp)
for run in $(seq "$runs"); do
  {
    echo "direct_mbps $(throughput "$b_ip")"
    echo "tunnel_mbps $(throughput 10.99.0.2)"
    echo "direct_ms $(latency "$b_ip")"
    echo "tunnel_ms $(latency 10.99.0.2)"
  } >>"$results"
  echo "run $run of $runs done" >&2
done
python3 - "$results" "$runs" "$seconds" "$(nproc)" <<'PY' | tee "$root/.cache/bench/wireguard-tunnel.txt"
import statistics, sys
values = {}
for line in open(sys.argv[1]):
    key, value = line.split()
    values.setdefault(key, []).append(float(value))
med = {k: statistics.median(v) for k, v in values.items()}
print("wireguard-go tunnel between two lab containers: medians of %s runs (iperf3 %s s, ping 200 x 10 ms), %s cores"
      % (sys.argv[2], sys.argv[3], sys.argv[4]))
print("| path | throughput (Mbit/s) | round trip (ms) |")
print("| --- | --- | --- |")
print("| direct | %.0f | %.3f |" % (med["direct_mbps"], med["direct_ms"]))
print("| wireguard-go tunnel | %.0f | %.3f |" % (med["tunnel_mbps"], med["tunnel_ms"]))
print("| tunnel / direct | %.2fx | %.2fx |" % (med["tunnel_mbps"] / med["direct_mbps"], med["tunnel_ms"] / med["direct_ms"]))
print("all runs: " + ", ".join("%s=%s" % (k, "/".join("%.3g" % x for x in v)) for k, v in sorted(values.items())))
PY
rm -f "$results"
