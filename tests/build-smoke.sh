#!/usr/bin/env bash
# Build the collection tarball, check it holds nothing it should not, install it into an empty
# path and run a playbook from outside the repo that uses the collection by its FQCN. Offline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build --force --output-path "$work/dist" "$root" >/dev/null
tarball=$(ls "$work"/dist/homelab-jellyfin_hardening-*.tar.gz)
echo "built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"

tar -tzf "$tarball" >"$work/contents"
for path in MANIFEST.json FILES.json meta/runtime.yml playbooks/site.yml README.md; do
  grep -qx "$path" "$work/contents" || { echo "tarball lacks $path" >&2; exit 1; }
done
if grep -E '(^|/)(\.cache|\.venv|\.git|\.pytest_cache|__pycache__|output|artifacts)(/|$)|\.tar\.gz$|^tests/(standin|lab)/|^\.ci/' "$work/contents"; then
  echo "tarball holds build or test artifacts (listed above): fix build_ignore in galaxy.yml" >&2
  exit 1
fi

# Only the empty path: the dev checkout on ANSIBLE_COLLECTIONS_PATH would make the install a no-op.
export ANSIBLE_COLLECTIONS_PATH="$work/collections"
ansible-galaxy collection install --offline --force -p "$work/collections" "$tarball" >/dev/null
[ -f "$work/collections/ansible_collections/homelab/jellyfin_hardening/playbooks/site.yml" ] || { echo "install put nothing in $work/collections" >&2; exit 1; }

mkdir -p "$work/user"
cat >"$work/user/inventory.yml" <<'INV'
jellyfin:
  hosts:
    smoke:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
INV
cat >"$work/user/site.yml" <<'PLAY'
- name: A user's own site.yml importing the collection's
  ansible.builtin.import_playbook: homelab.jellyfin_hardening.site

- name: A module of the collection by its FQCN (read-only)
  hosts: jellyfin
  gather_facts: false
  tasks:
    - name: Read the firewall facts
      homelab.jellyfin_hardening.netfilter_facts:
    - name: Show them
      ansible.builtin.assert:
        that: ansible_facts.jellyfin_hardening_netfilter.table.exists in [true, false]
PLAY
# A stand-in Jellyfin on loopback for the play to find.
cat >"$work/standin.json" <<JSON
{"host": "127.0.0.1", "port": 0, "log_dir": "$work/log", "network_xml": "$work/network.xml", "version": "10.11.11"}
JSON
python3 - "$work/standin.json" "$root/tests/standin/jellyfin_standin.py" >"$work/port" <<'PY' &
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("standin", sys.argv[2])
standin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(standin)
server = standin.make_server(standin.Server(json.load(open(sys.argv[1]))), "127.0.0.1", 0)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
standin_pid=$!
trap 'kill $standin_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/port")"

cd "$work/user"
# This machine is not a lab host: every layer off, so the play only reads.
layers_off='{"jellyfin_hardening_fail2ban": false, "jellyfin_hardening_blocklist": false, "jellyfin_hardening_patching": false}'
ansible-playbook -i inventory.yml site.yml -e jellyfin_hardening_jellyfin_url="$url" -e "$layers_off" >"$work/run.log" 2>&1 || { cat "$work/run.log" >&2; exit 1; }
grep -q "Jellyfin 10.11.11 .*layers applied: none" "$work/run.log" || { echo "the play did not report the stand-in" >&2; cat "$work/run.log" >&2; exit 1; }
ansible-playbook -i inventory.yml homelab.jellyfin_hardening.site -e jellyfin_hardening_jellyfin_url="$url" -e "$layers_off" >"$work/run2.log" 2>&1 || { cat "$work/run2.log" >&2; exit 1; }
echo "installed tarball works offline from outside the repo (import_playbook and the playbook's FQCN)"
