"""The firewall model, proven with real nftables, a real dockerd and clients in other containers."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from labhosts import connect, systemctl_settled  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
# Playbooks beside this file's scenario: scenario firewall_ipset runs these tests too.
SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
HOST = connect("fw-jellyfin")
CLIENT_A = connect("fw-client-a")
CLIENT_B = connect("fw-client-b")
TABLE = "inet jellyfin_hardening"
FIREWALL_UNIT = "jellyfin-hardening-firewall.service"
TEST_SETS = ("test_block_v4", "test_ban_v4", "test_allow_v4", "test_vpn_v4", "test_lan_v4")
PORTS = (8096, 8097)  # native Jellyfin, Docker-published Jellyfin
# The same tests prove both backends: scenario firewall (nftables) and firewall_ipset (iptables-legacy, ipset).
BACKEND = os.environ.get("LAB_FIREWALL_BACKEND", "nftables")


_ADDRESSES = {}


def ipv4(host):
    """eth0's address, read once per host (forget() after a restart)."""
    if host not in _ADDRESSES:
        _ADDRESSES[host] = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", host.check_output("ip -4 -o addr show dev eth0")).group(1)
    return _ADDRESSES[host]


def gateway():
    return HOST.check_output("ip -4 route show default").split()[2]


def status(client, port, timeout=2):
    """HTTP status of /System/Info/Public through the port, or None when no answer came."""
    out = client.check_output("jfclient get http://%s:%d --timeout %s" % (ipv4(HOST), port, timeout))
    return json.loads(out)["status"]


def tcp_open(client, port, timeout=2):
    code = ("import socket,sys; s=socket.socket(); s.settimeout(%s); "
            "sys.exit(0 if s.connect_ex(('%s', %d)) == 0 else 1)") % (timeout, ipv4(HOST), port)
    return client.run("python3 -c \"%s\"" % code).rc == 0


def add(set_name, element):
    if BACKEND == "ipset":
        HOST.run_expect([0], "ipset add -exist jfh_%s %s" % (set_name, element))
    else:
        HOST.run_expect([0], "nft add element %s %s { %s }" % (TABLE, set_name, element))


def flush(set_name):
    HOST.run_expect([0], "ipset flush jfh_%s" % set_name if BACKEND == "ipset" else "nft flush set %s %s" % (TABLE, set_name))


def elements(set_name):
    """The set's elements as CIDRs, read from the kernel."""
    if BACKEND == "ipset":
        out = HOST.check_output("ipset save jfh_%s" % set_name)
        found = [line.split()[2] for line in out.splitlines() if line.startswith("add ")]
    else:
        data = json.loads(HOST.check_output("nft -j list set %s %s" % (TABLE, set_name)))
        found = [("%s/%s" % (e["prefix"]["addr"], e["prefix"]["len"]) if isinstance(e, dict) else e)
                 for obj in data["nftables"] for e in obj.get("set", {}).get("elem", [])]
    return sorted(f if "/" in f else f + "/32" for f in found)


def rules_listing():
    """The collection's rules as the kernel has them, for before/after comparisons."""
    if BACKEND == "ipset":
        return HOST.check_output("iptables -S JFH-CHECK; iptables -S JFH-DENY; iptables -S INPUT")
    return HOST.check_output("nft list chain %s prerouting" % TABLE)


@pytest.fixture(autouse=True)
def empty_test_sets():
    for name in TEST_SETS:
        flush(name)
    yield
    for name in TEST_SETS:
        flush(name)


def test_order_is_the_documented_one():
    if BACKEND == "ipset":
        check_iptables_order()
        return
    rules = json.loads(HOST.check_output("nft -j list chain %s prerouting" % TABLE))["nftables"]
    text = [json.dumps(obj["rule"]["expr"]) for obj in rules if "rule" in obj]

    def index(fragment):
        return next(i for i, rule in enumerate(text) if fragment in rule)

    order = [index('"@mgmt_v4"'), index('"target": "blocklist"'), index('"target": "bans"'),
             index('"established"'), index('"target": "restrict_allow"'), index('"target": "restrict_deny"')]
    assert order == sorted(order), text
    chain = [obj["chain"] for obj in rules if "chain" in obj][0]
    assert (chain["hook"], chain["prio"]) == ("prerouting", -150)


def check_iptables_order():
    assert "legacy" in HOST.check_output("iptables -V"), "the ipset scenario is meant to run on iptables-legacy"
    for tool in ("iptables", "ip6tables"):
        assert HOST.check_output("%s -S INPUT" % tool).splitlines()[1] == "-A INPUT -j JFH-INPUT"
        assert HOST.check_output("%s -S DOCKER-USER" % tool).splitlines()[1] == "-A DOCKER-USER -j JFH-FORWARD"
    check = HOST.check_output("iptables -S JFH-CHECK").splitlines()[1:]
    assert len(check) == 5 and "jfh_mgmt_v4" in check[0] and check[0].endswith("-j RETURN"), check
    assert check[1:3] == ["-A JFH-CHECK -j JFH-BLOCKLIST", "-A JFH-CHECK -j JFH-BANS"], check
    assert "ESTABLISHED" in check[3] and check[4] == "-A JFH-CHECK -g JFH-ALLOW", check
    assert "-j ACCEPT" not in HOST.check_output("iptables -S | grep JFH"), "an ACCEPT would end INPUT for UFW and the rest"


def test_docker_restart_keeps_the_published_port_checked():
    add("test_allow_v4", ipv4(CLIENT_B))
    HOST.run_expect([0], "systemctl restart docker")
    wait_for(HOST, "python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:8097/health', timeout=2)\"")
    assert status(CLIENT_B, 8097) == 200
    assert status(CLIENT_A, 8097) is None, "after a Docker restart the published port was open to an unknown client"


@pytest.mark.parametrize("port", PORTS)
def test_each_client_class_gets_the_answer_the_order_says(port):
    a, b = ipv4(CLIENT_A), ipv4(CLIENT_B)
    assert status(CLIENT_A, port) is None, "unknown address reached Jellyfin while a restriction is active"
    for allow_set in ("test_allow_v4", "test_vpn_v4", "test_lan_v4"):
        for name in ("test_allow_v4", "test_vpn_v4", "test_lan_v4"):
            flush(name)
        add(allow_set, a)
        assert status(CLIENT_A, port) == 200, allow_set
    add("test_allow_v4", b)
    add("test_ban_v4", a)
    assert status(CLIENT_A, port) is None, "a banned address got through its allow entry"
    assert status(CLIENT_B, port) == 200, "another client lost access when one was banned"
    flush("test_ban_v4")
    add("test_block_v4", a)
    assert status(CLIENT_A, port) is None, "a blocklisted address got through its allow entry"
    assert status(CLIENT_B, port) == 200


def test_blocklist_on_every_port_cuts_ssh_for_others_but_not_the_management_path(tmp_path):
    b = ipv4(CLIENT_B)
    assert tcp_open(CLIENT_B, 22)
    add("test_block_v4", b)
    add("test_block_v4", gateway())
    assert not tcp_open(CLIENT_B, 22), "the test blocklist does not cover SSH: the management test below would prove nothing"

    inventory = tmp_path / "ssh-inventory.yml"
    inventory.write_text(json.dumps({"jellyfin": {"hosts": {"fw-jellyfin": {
        "ansible_host": ipv4(HOST), "ansible_user": "root", "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": os.path.join(EPHEMERAL, "lab_ssh_key"),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "lab_firewall_backend": BACKEND}}}}))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    for run in (1, 2):
        proc = subprocess.run(["ansible-playbook", "-i", str(inventory), os.path.join(SCENARIO, "converge.yml")],
                              env=env, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, "converge %d over SSH failed: %s %s" % (run, proc.stdout[-3000:], proc.stderr[-3000:])
        stats = json.loads(proc.stdout)["stats"]["fw-jellyfin"]
        assert stats["unreachable"] == 0 and stats["failures"] == 0
        if run == 2:
            assert stats["changed"] == 0, "second converge over SSH changed something"
    assert gateway() + "/32" in elements("test_block_v4")


def run_guard(extra_vars):
    return subprocess.run(["ansible-playbook", "-i", INVENTORY, os.path.join(SCENARIO, "guard.yml"), "-e", json.dumps(extra_vars)],
                          capture_output=True, text=True, timeout=600, check=False)


def test_no_management_path_fails_before_anything_is_touched():
    before = HOST.check_output("sha256sum /etc/jellyfin-hardening/firewall/firewall.json") + rules_listing()
    proc = run_guard({"firewall_management_sources": [], "firewall_jellyfin_ports": [8096, 8097]})
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "No management path" in output and "firewall_management_sources" in output, output[-3000:]
    bad = run_guard({"firewall_management_sources": ["10.0.0.300"], "firewall_jellyfin_ports": [8096, 8097]})
    assert bad.returncode != 0 and "10.0.0.300" in bad.stdout + bad.stderr
    no_ports = run_guard({"firewall_management_sources": ["192.0.2.1"], "firewall_jellyfin_ports": []})
    assert no_ports.returncode != 0 and "firewall_jellyfin_ports needs at least one port" in no_ports.stdout + no_ports.stderr
    assert HOST.check_output("sha256sum /etc/jellyfin-hardening/firewall/firewall.json") + rules_listing() == before


def filled_sets():
    add("test_block_v4", "203.0.113.0/24")
    add("test_ban_v4", "198.51.100.7")
    add("test_allow_v4", ipv4(CLIENT_A))
    add("test_lan_v4", "192.0.2.0/25")
    return {name: elements(name) for name in TEST_SETS}


def wait_for(host, command, attempts=60):
    for _attempt in range(attempts):
        if host.run(command).rc == 0:
            return
        time.sleep(1)
    raise AssertionError("timed out waiting for: " + command)


def test_table_and_sets_survive_nftables_restart_and_reload():
    expected = filled_sets()
    systemctl_settled(HOST, "restart", "nftables.service", FIREWALL_UNIT)
    assert {name: elements(name) for name in TEST_SETS} == expected
    systemctl_settled(HOST, "reload", "nftables.service", FIREWALL_UNIT)
    assert {name: elements(name) for name in TEST_SETS} == expected


def test_table_and_sets_survive_a_reboot():
    expected = filled_sets()
    subprocess.run(["podman", "restart", "fw-jellyfin"], check=True, capture_output=True, timeout=300)
    _ADDRESSES.clear()
    wait_for(HOST, "systemctl is-active jellyfin-hardening-firewall.service")
    assert {name: elements(name) for name in TEST_SETS} == expected
    wait_for(HOST, "python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:8097/health', timeout=2)\"")
    wait_for(HOST, "systemctl is-active jellyfin")
    for port in PORTS:
        assert status(CLIENT_A, port) == 200
        assert status(CLIENT_B, port) is None
