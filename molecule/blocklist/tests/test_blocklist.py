"""Block lists against real clients, real nftables, real ipset and a real dockerd; lists come from the lab's server."""

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from labhosts import addr, connect, forget, tcp_open  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NFT_HOST = connect("bl-nft")
DOCKER_HOST = connect("bl-docker")
LISTED = connect("bl-listed")
CLEAN = connect("bl-clean")
EXCLUDED = connect("bl-excluded")
# Listed but excluded, so the hosts can always download from it.
SERVER = EXCLUDED
# (host, container name, Jellyfin's port there): native on nftables, Docker-published on the ipset backend.
TARGETS = [(NFT_HOST, "bl-nft", 8096), (DOCKER_HOST, "bl-docker", 8097)]
REFRESH = "/usr/local/sbin/jellyfin-hardening-blocklist refresh"


def entries(host):
    """The list's entries as the kernel holds them."""
    if host == DOCKER_HOST:
        out = host.check_output("ipset save jfh_lab_level1_v4")
        return sorted(line.split()[2] for line in out.splitlines() if line.startswith("add "))
    data = json.loads(host.check_output("nft -j list set inet jellyfin_hardening lab_level1_v4"))
    found = []
    for obj in data["nftables"]:
        for elem in obj.get("set", {}).get("elem", []):
            found.append(elem if isinstance(elem, str) else "%s/%d" % (elem["prefix"]["addr"], elem["prefix"]["len"])
                         if "prefix" in elem else "%s-%s" % tuple(elem["range"]))
    return sorted(found)


def serve(*args):
    SERVER.check_output("listserver write level1 " + " ".join(args))


def serve_default(seed=0):
    serve("--seed %d --include %s %s" % (seed, addr(LISTED), addr(EXCLUDED)))


def wait_for(predicate, what, attempts=120):
    for _attempt in range(attempts):
        if predicate():
            return
        time.sleep(1)
    raise AssertionError("timed out waiting for: " + what)


@pytest.fixture(autouse=True)
def default_list():
    """Every test starts and ends with the converge's list in force."""
    serve_default()
    for host, _name, _port in TARGETS:
        host.run_expect([0], REFRESH)
    yield
    serve_default()
    for host, _name, _port in TARGETS:
        host.run_expect([0], REFRESH)


@pytest.mark.parametrize("host, name, port", TARGETS)
def test_listed_is_dropped_clean_and_excluded_get_through(host, name, port):
    assert len(entries(host)) == 4501, "4,500 networks and bl-listed; bl-excluded is cut out"
    assert addr(EXCLUDED) not in entries(host)
    assert not tcp_open(LISTED, host, port), "a listed client reached Jellyfin on %s" % name
    assert tcp_open(CLEAN, host, port)
    assert tcp_open(EXCLUDED, host, port), "a listed client in blocklist_exclude was dropped"


def connect_errno(client, target, port):
    code = "import socket; s=socket.socket(); s.settimeout(2); print(s.connect_ex(('%s', %d)))" % (addr(target), port)
    return int(client.check_output("python3 -c \"%s\"" % code))


def test_listed_is_dropped_on_every_port_not_only_jellyfins():
    """blocklist_ports: all. Port 9 is closed on bl-nft: a clean client is refused, a listed one hears nothing."""
    assert connect_errno(CLEAN, NFT_HOST, 9) == 111
    assert connect_errno(LISTED, NFT_HOST, 9) == 11


@pytest.mark.parametrize("host, name, port", TARGETS)
def test_refresh_swaps_in_a_changed_list(host, name, port):
    serve("--seed 1 --include %s" % addr(CLEAN))
    out = host.check_output(REFRESH)
    assert "changed" in out and "unchanged" not in out
    assert tcp_open(LISTED, host, port), "bl-listed left the list but is still dropped on %s" % name
    assert not tcp_open(CLEAN, host, port), "bl-clean joined the list but still gets through on %s" % name
    assert "11.0.1.0/24" in entries(host) and "11.0.0.0/24" not in entries(host)


@pytest.mark.parametrize("body, message", [
    ("--body html", "HTML page"),
    ("--body empty", "is empty"),
    ("--body half", "would shrink from 4501 to"),
])
@pytest.mark.parametrize("host, name, port", TARGETS)
def test_broken_downloads_are_refused_and_the_list_in_force_stays(host, name, port, body, message):
    before = entries(host)
    serve("--include %s %s %s" % (addr(LISTED), addr(EXCLUDED), body))
    run = host.run(REFRESH)
    assert run.rc == 1, "a refused download must fail the refresh, so systemd shows it"
    assert message in run.stderr
    assert entries(host) == before
    assert not tcp_open(LISTED, host, port)
    if "half" not in body:
        assert "cached copy was used" in run.stderr


# Counts the SYNs of each probing client to Jellyfin just before and just after the collection's checks
# (nftables: our table at prerouting -150; ipset backend: DOCKER-USER in filter FORWARD at 0). A SYN
# counted before but not after was dropped by the firewall, whatever the application did with it.
PROBE_HOOKS = {"bl-nft": ("prerouting", -151, -149), "bl-docker": ("forward", -1, 1)}


def counting_table(name, port):
    hook, before, after = PROBE_HOOKS[name]
    lines = ["add table inet lab_probe", "delete table inet lab_probe", "add table inet lab_probe"]
    for chain, priority in (("before", before), ("after", after)):
        lines.append("add chain inet lab_probe %s { type filter hook %s priority %d; policy accept; }" % (chain, hook, priority))
        for client in ("clean", "listed"):
            address = addr(CLEAN if client == "clean" else LISTED)
            lines.append('add rule inet lab_probe %s ip saddr %s meta l4proto tcp ct original proto-dst %d tcp flags & (syn | ack) == syn '
                         'counter comment "%s"' % (chain, address, port, client))
    return "\n".join(lines) + "\n"


# Swaps are bounded (40 stay well inside the probes' two minutes); the SYNs counted before the checks must
# pass these before the counts prove anything.
MAX_SWAPS = 40
MIN_SYNS = {"clean": 50, "listed": 20}


def enough_syns(counts):
    return all(counts[("before", client)] > least for client, least in MIN_SYNS.items())


def syn_counts(host):
    data = json.loads(host.check_output("nft -j list table inet lab_probe"))
    counts = {}
    for obj in data["nftables"]:
        rule = obj.get("rule")
        if rule:
            packets = [e["counter"]["packets"] for e in rule["expr"] if "counter" in e][0]
            counts[(rule["chain"], rule["comment"])] = packets
    return counts


@pytest.mark.parametrize("host, name, port", TARGETS)
def test_no_gap_while_the_list_is_reloaded_again_and_again(host, name, port):
    """Clients connect again and again while the list is swapped (every entry changes) ten times or more.

    The swaps go on until each client has sent enough SYNs for the counts to mean something: a listed
    client's attempt waits out its 0.5 s timeout, and ten swaps on a fast host take only a few seconds.
    """
    host.run_expect([0], "printf '%%s' %s | nft -f -" % shlex.quote(counting_table(name, port)))
    # Bounded: two minutes at most, stopped as soon as the reloads are done.
    probe = ("end=$((SECONDS+120)); while [ $SECONDS -lt $end ]; do "
             "timeout 0.5 bash -c '</dev/tcp/%s/%d' 2>/dev/null; done\n" % (addr(host), port))
    try:
        for client in (CLEAN, LISTED):
            client.run("systemctl stop lab-probe; systemctl reset-failed lab-probe")
            client.run_expect([0], "printf '%%s' %s > /root/probe.sh" % shlex.quote(probe))
            client.run_expect([0], "systemd-run --unit lab-probe bash /root/probe.sh")
        time.sleep(2)
        for seed in range(1, MAX_SWAPS + 1):
            serve("--seed %d --include %s %s" % (seed % 2, addr(LISTED), addr(EXCLUDED)))
            out = host.check_output(REFRESH)
            assert "list lab_level1: changed" in out
            if seed >= 10 and enough_syns(syn_counts(host)):
                break
        for client in (CLEAN, LISTED):
            assert client.run("systemctl is-active lab-probe").stdout.strip() == "active", "the probe ended before the reloads"
            client.run_expect([0], "systemctl stop lab-probe")
        time.sleep(1)
        counts = syn_counts(host)
    finally:
        host.run("nft delete table inet lab_probe")
    assert enough_syns(counts), "the probes sent too few SYNs for the test to prove anything: %s" % counts
    assert counts[("after", "clean")] == counts[("before", "clean")], "the firewall dropped SYNs of bl-clean: %s" % counts
    assert counts[("after", "listed")] == 0, "SYNs of bl-listed got past the firewall: %s" % counts


@pytest.mark.parametrize("host, name, port", TARGETS)
def test_reboot_restores_the_list_before_any_download(host, name, port):
    before = entries(host)
    SERVER.run_expect([0], "systemctl stop lab-lists")
    try:
        subprocess.run(["podman", "restart", name], check=True, capture_output=True, timeout=300)
        forget(host)
        wait_for(lambda: host.run("systemctl is-active jellyfin-hardening-blocklist-restore.service").rc == 0,
                 "the restore unit on %s" % name)
        assert entries(host) == before
        log = host.check_output("journalctl -b -u jellyfin-hardening-blocklist-restore.service --no-pager")
        assert "list lab_level1: changed" in log
        wait_for(lambda: tcp_open(CLEAN, host, port), "Jellyfin on %s after the restart" % name)
        assert not tcp_open(LISTED, host, port)
    finally:
        SERVER.run_expect([0], "systemctl start lab-lists")


@pytest.mark.parametrize("verb", ["restart", "reload"])
def test_nftables_flush_ruleset_is_followed_by_a_refill(verb):
    before = entries(NFT_HOST)
    NFT_HOST.run_expect([0], "systemctl %s nftables.service" % verb)
    wait_for(lambda: NFT_HOST.run("systemctl is-active jellyfin-hardening-blocklist-restore.service").rc == 0, "the restore unit")
    wait_for(lambda: entries(NFT_HOST) == before, "the list back after nftables %s" % verb, 20)
    assert not tcp_open(LISTED, NFT_HOST, 8096)


def test_ban_snapshot_leaves_the_list_out():
    """The only sets on bl-nft are the list's, which its restore unit refills: the snapshot has nothing to carry."""
    out = NFT_HOST.check_output("/usr/local/sbin/jellyfin-hardening-firewall save")
    assert out == "no set to snapshot in the kernel: snapshot left as it was"
    snapshot = NFT_HOST.file("/var/lib/jellyfin-hardening/firewall-sets.json")
    assert not snapshot.exists or "lab_level1" not in snapshot.content_string
    assert NFT_HOST.file("/var/cache/jellyfin-hardening/blocklist/lab_level1").mode == 0o700


def test_timer_is_scheduled_with_a_random_delay():
    for host, _name, _port in TARGETS:
        assert host.service("jellyfin-hardening-blocklist.timer").is_enabled
        assert host.service("jellyfin-hardening-blocklist.timer").is_running
        assert "RandomizedDelaySec=900" in host.file("/etc/systemd/system/jellyfin-hardening-blocklist.timer").content_string


# The other bad values are refused by the same checks (tests/unit/plugins/module_utils/test_blocklist.py).
@pytest.mark.parametrize("extra_vars, named", [
    ({"blocklist_lists": [{"name": "lab_level1", "sources": ["ftp://lab/level1"]}]}, "ftp://lab/level1"),
    ({"blocklist_exclude": ["10.0.0.300"]}, "10.0.0.300"),
])
def test_bad_settings_fail_before_anything_is_touched(extra_vars, named):
    files = "/etc/jellyfin-hardening/blocklist/lists.json /etc/jellyfin-hardening/firewall/layers.d/20-blocklist.json"
    before = NFT_HOST.check_output("sha256sum " + files), entries(NFT_HOST)
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY, "--limit", "bl-nft", os.path.join(SCENARIO, "converge.yml"),
                           "-e", json.dumps(extra_vars)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode != 0
    assert named in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert (NFT_HOST.check_output("sha256sum " + files), entries(NFT_HOST)) == before


def test_cron_refresh_runs_the_same_refresher():
    """blocklist_refresh=cron, every minute without delay: the served change reaches the kernel by itself."""
    converge = ["ansible-playbook", "-i", INVENTORY, "--limit", "bl-nft", os.path.join(SCENARIO, "converge.yml")]
    cron = {"blocklist_refresh": "cron", "blocklist_refresh_cron": "* * * * *", "blocklist_refresh_random_delay": 0}
    try:
        proc = subprocess.run(converge + ["-e", json.dumps(cron)], capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        assert not NFT_HOST.service("jellyfin-hardening-blocklist.timer").is_running
        serve("--seed 1 --include %s" % addr(CLEAN))
        wait_for(lambda: "11.0.1.0/24" in entries(NFT_HOST), "cron to load the changed list", 150)
        assert not tcp_open(CLEAN, NFT_HOST, 8096)
    finally:
        proc = subprocess.run(converge, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert not NFT_HOST.file("/etc/cron.d/jellyfin-hardening-blocklist").exists
    assert NFT_HOST.service("jellyfin-hardening-blocklist.timer").is_running
