#!/usr/bin/env bash
# One Jellyfin upgrade (stand-in packages 10.11.9 -> 10.11.11 from the lab's signed repository) done the blog
# post's way, fixed to name the server package (`apt-get update && apt-get install --only-upgrade jellyfin
# jellyfin-server`), against jellyfin-hardening-patch, in the same throw-away lab container and the same run.
# Reports the command's wall time, the time until Jellyfin serves the new version, and how long /health failed.
# Usage: bench/patching_upgrade.sh [--runs 3]
set -euo pipefail
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9]$ ]] || { echo "--runs takes 1-9" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/tests/lab/env.sh"
mkdir -p "$root/.cache/bench"
c=jfh-bench-patch-$$
cleanup() { podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; }
trap cleanup EXIT
podman run -d --rm --name "$c" --systemd=always --privileged localhost/jfh-lab:debian12 /lib/systemd/systemd >/dev/null
inside() { podman exec "$c" bash -c "$1"; }
for _attempt in $(seq 60); do inside 'systemctl is-system-running 2>/dev/null | grep -qE "running|degraded"' && break; sleep 1; done
inside 'mkdir -p /usr/local/share/jellyfin-standin /usr/local/lib/jellyfin-hardening/ansible_collections/homelab/jellyfin_hardening/plugins/module_utils /etc/jellyfin-hardening/patching /etc/apt/keyrings'
podman cp "$root/tests/standin/jellyfin_standin.py" "$c:/usr/local/share/jellyfin-standin/jellyfin_standin.py"
podman cp "$root/tests/lab/aptrepo.sh" "$c:/usr/local/bin/aptrepo"
podman cp "$root/tests/lab/listserver.py" "$c:/usr/local/bin/listserver.py"
for f in jellyfin_patching.py hostlock.py; do
  podman cp "$root/plugins/module_utils/$f" "$c:/usr/local/lib/jellyfin-hardening/ansible_collections/homelab/jellyfin_hardening/plugins/module_utils/$f"
done
{ echo '#!/usr/bin/python3'; cat "$root/roles/patching/files/jellyfin_hardening_patch.py"; } | podman exec -i "$c" sh -c 'cat > /usr/local/sbin/jellyfin-hardening-patch && chmod 755 /usr/local/sbin/jellyfin-hardening-patch'
inside 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends apt-utils gnupg >/dev/null'
# Only the lab repository from here on: both ways then read the same single source, and nothing leaves the lab.
inside 'mkdir -p /root/sources && mv /etc/apt/sources.list.d/* /root/sources/ 2>/dev/null; : > /etc/apt/sources.list'
inside 'aptrepo init && aptrepo build 10.11.9 && aptrepo build 10.11.11 && aptrepo publish 10.11.9 10.11.11 >/dev/null 2>&1'
inside 'systemd-run -q --unit=lab-aptrepo python3 /usr/local/bin/listserver.py serve /srv/aptrepo/www 8080 && sleep 1
    cp /srv/aptrepo/www/jellyfin_team.gpg.key /etc/apt/keyrings/jellyfin.asc
    printf "Types: deb\nURIs: http://127.0.0.1:8080\nSuites: bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/jellyfin.asc\n" > /etc/apt/sources.list.d/jellyfin.sources
    printf "{\"mode\": \"native\", \"url\": \"http://127.0.0.1:8096\", \"packages\": [\"jellyfin\", \"jellyfin-server\"], \"health_timeout\": 60, \"lock_timeout\": 60, \"log_file\": \"/var/log/jellyfin-hardening/patching.log\", \"status_file\": \"/var/lib/jellyfin-hardening/patching/status.json\", \"apt_sources\": \"/etc/apt/sources.list.d/jellyfin.sources\", \"postpone\": {\"enabled\": false}}\n" > /etc/jellyfin-hardening/patching/patching.json
    apt-get update -qq'
# Runs the command and polls /health and /System/Info/Public every 20 ms from its start until 10.11.11 answers
# and the command has ended (at most 120 s): the command's time, the time until 10.11.11 serves, /health's downtime.
podman exec -i "$c" sh -c 'cat > /root/measure.py' <<'PY'
import json, subprocess, sys, time, urllib.request
start = last_ok = time.monotonic()
down, serving, wall = 0.0, None, None
proc = subprocess.Popen(["bash", "-c", sys.argv[2]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while time.monotonic() < start + 120 and (serving is None or wall is None):
    now = time.monotonic()
    if wall is None and proc.poll() is not None:
        wall = now - start
    try:
        urllib.request.urlopen("http://127.0.0.1:8096/health", timeout=1).read()
        version = json.load(urllib.request.urlopen("http://127.0.0.1:8096/System/Info/Public", timeout=1))["Version"]
        down, last_ok = down + max(0.0, now - last_ok - 0.05), now
        if version == "10.11.11" and serving is None:
            serving = now - start
    except OSError:
        pass
    time.sleep(0.02)
print(sys.argv[1], "%.3f %.3f %.3f" % (wall or float("nan"), serving or float("nan"), down))
PY
reset() {
  # shellcheck disable=SC2016  # expanded by the container's shell
  inside 'apt-get install -qq -y --allow-downgrades jellyfin=10.11.9+deb12 jellyfin-server=10.11.9+deb12 >/dev/null 2>&1
      rm -f /var/lib/jellyfin-hardening/patching/status.json
      for i in $(seq 100); do python3 -c "import urllib.request as u; u.urlopen(\"http://127.0.0.1:8096/health\", timeout=1)" 2>/dev/null && exit 0; sleep 0.1; done; exit 1'
}
measure() { inside "python3 /root/measure.py $1 '$2'"; }
results=$(mktemp)
for run in $(seq "$runs"); do
  reset; measure naive 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install --only-upgrade -y jellyfin jellyfin-server' >>"$results"
  reset; measure job 'jellyfin-hardening-patch run' >>"$results"
  echo "run $run of $runs done" >&2
done
python3 - "$results" "$runs" "$(nproc)" <<'PY' | tee "$root/.cache/bench/patching-upgrade.txt"
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, wall, serving, down = line.split()
    rows.setdefault(name, []).append((float(wall), float(serving), float(down)))
med = {name: [statistics.median(col) for col in zip(*values)] for name, values in rows.items()}
print("Jellyfin stand-in 10.11.9 -> 10.11.11 from the lab's signed repository: medians of %s runs, %s cores" % (sys.argv[2], sys.argv[3]))
print("| way | command (s) | until 10.11.11 serves (s) | /health failing (s) |")
print("| --- | --- | --- | --- |")
for name, label in (("naive", "apt-get update && apt-get install --only-upgrade"), ("job", "jellyfin-hardening-patch run")):
    print("| %s | %.2f | %.2f | %.2f |" % (label, *med[name]))
print("| job / naive | %.2fx | %.2fx | %.2fx |" % tuple(j / n if n else float("nan") for j, n in zip(med["job"], med["naive"])))
PY
