"""The DDNS allowlist against real clients, a real name server whose records change, real nftables, ipset and ufw."""

import json
import os
import re
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from labhosts import addr, connect, tcp_open  # noqa: E402  pylint: disable=wrong-import-position

NFT_HOST = connect("al-nft")
IPSET_HOST = connect("al-ipset")
UFW_HOST = connect("al-ufw")
DNS = connect("al-dns")
FRIEND1 = connect("al-friend1")
FRIEND2 = connect("al-friend2")
SERVERS = [NFT_HOST, IPSET_HOST, UFW_HOST]
SYNC = "systemctl start jellyfin-hardening-allowlist.service"
ZONE = "/srv/dns/zone.json"


def records(alice, carol, bob="2001:db8::b0b"):
    """Rewrite the zone in one command: each argument is one name's addresses (space-separated)."""
    DNS.check_output(" && ".join("dnsserver set %s %s.ddns.test %s" % (ZONE, name, value)
                                 for name, value in (("alice", alice), ("carol", carol), ("bob", bob))))


def sync_all():
    for host in SERVERS:
        host.run_expect([0], SYNC)


def allowed(host):
    """The allowlist as the firewall holds it: nft set, ipsets or ufw rules."""
    if host == NFT_HOST:
        found = []
        for family in ("v4", "v6"):
            data = json.loads(host.check_output("nft -j list set inet jellyfin_hardening jellyfin_allow_%s" % family))
            for obj in data["nftables"]:
                for elem in obj.get("set", {}).get("elem", []):
                    found.append(elem if isinstance(elem, str) else "%s/%d" % (elem["prefix"]["addr"], elem["prefix"]["len"]))
        return sorted(found)
    if host == IPSET_HOST:
        out = host.check_output("ipset save jfh_jellyfin_allow_v4; ipset save jfh_jellyfin_allow_v6")
        return sorted(line.split()[2] for line in out.splitlines() if line.startswith("add "))
    out = host.check_output("ufw show added")
    return sorted(m.group(1) for m in re.finditer(r"^ufw allow from (\S+) to any port 8096 proto tcp comment 'jellyfin_allow'$", out, re.M))


def converge_records():
    records(addr(FRIEND1), addr(FRIEND1))


@pytest.fixture(scope="module", autouse=True)
def converge_state():
    """The tests start from the converge's records, and leave them back in force (the check-mode run compares)."""
    yield
    DNS.run_expect([0], "systemctl start lab-dns")
    converge_records()
    sync_all()


def test_only_the_allowlist_reaches_jellyfin():
    converge_records()
    sync_all()
    for server in SERVERS:
        assert allowed(server) == sorted([addr(FRIEND1), "192.0.2.0/24", "2001:db8::b0b"]), server
        assert tcp_open(FRIEND1, server, 8096, 1), "friend1 (alice's and carol's address) cannot reach Jellyfin"
        assert not tcp_open(FRIEND2, server, 8096, 1), "friend2 (on no name) reached Jellyfin"
        assert not tcp_open(DNS, server, 8096, 1), "an unknown address reached Jellyfin"


def test_two_names_share_an_address_until_both_leave():
    records(addr(FRIEND1), "198.51.100.77")
    sync_all()
    for server in SERVERS:
        assert addr(FRIEND1) in allowed(server), "carol left friend1's address, and it went although alice is still there"
        assert tcp_open(FRIEND1, server, 8096, 1)


def test_a_changed_record_swaps_access_on_the_next_run():
    records(addr(FRIEND2), "198.51.100.77")
    sync_all()
    for server in SERVERS:
        assert allowed(server) == sorted([addr(FRIEND2), "192.0.2.0/24", "198.51.100.77", "2001:db8::b0b"])
        assert tcp_open(FRIEND2, server, 8096, 1), "friend2 cannot reach Jellyfin after alice moved there"
        assert not tcp_open(FRIEND1, server, 8096, 1), "friend1 still reaches Jellyfin after both names left it"


def test_a_dns_outage_locks_nobody_out():
    converge_records()
    sync_all()
    DNS.run_expect([0], "systemctl stop lab-dns")
    try:
        for server in SERVERS:
            # The job still succeeds: the names keep their last answers, and it says so in the journal.
            server.run_expect([0], SYNC)
            assert allowed(server) == sorted([addr(FRIEND1), "192.0.2.0/24", "2001:db8::b0b"])
            assert tcp_open(FRIEND1, server, 8096, 1), "friend1 lost access while DNS was down"
            journal = server.check_output("journalctl -u jellyfin-hardening-allowlist.service -n 20 --no-pager")
            assert "did not resolve: alice.ddns.test" in journal, journal
    finally:
        DNS.run_expect([0], "systemctl start lab-dns")


def test_ufw_rules_change_exactly_never_by_substring():
    # The blog recipe deletes with grep: revoking 198.51.100.1 took 198.51.100.10's rule with it.
    records(addr(FRIEND1) + " 198.51.100.1", "198.51.100.10")
    UFW_HOST.run_expect([0], SYNC)
    assert {"198.51.100.1", "198.51.100.10"} <= set(allowed(UFW_HOST))
    records(addr(FRIEND1), "198.51.100.10")
    UFW_HOST.run_expect([0], SYNC)
    rules = allowed(UFW_HOST)
    assert "198.51.100.10" in rules and "198.51.100.1" not in rules, rules
    # Every allow comes before the deny that closes the port to everyone else.
    numbered = UFW_HOST.check_output("ufw status numbered")
    order = [("DENY" in line) for line in numbered.splitlines() if "8096/tcp" in line and "(v6)" not in line and ":" not in line.split("]")[-1]]
    assert order and order[-1] and not any(order[:-1]), numbered


def test_ufw_refuses_a_rule_that_opens_the_port_to_everyone():
    UFW_HOST.run_expect([0], "ufw allow 8096/tcp")
    try:
        result = UFW_HOST.run(SYNC)
        assert result.rc != 0, "the job accepted a ufw rule that makes the allowlist meaningless"
        journal = UFW_HOST.check_output("journalctl -u jellyfin-hardening-allowlist.service -n 5 --no-pager")
        assert "let everyone reach the allowlisted ports" in journal, journal
    finally:
        UFW_HOST.run_expect([0], "ufw delete allow 8096/tcp")


def test_the_timer_runs_every_five_minutes():
    for server in SERVERS:
        out = server.check_output("systemctl is-enabled jellyfin-hardening-allowlist.timer; systemctl is-active jellyfin-hardening-allowlist.timer;"
                                  " systemctl cat jellyfin-hardening-allowlist.timer; stat -c '%a %U' /var/lib/jellyfin-hardening/jellyfin_allow.json")
        assert out.startswith("enabled\nactive\n"), out
        assert "OnUnitActiveSec=5min" in out, out
        assert out.rstrip().endswith("600 root"), "the state file is not 0600 root: " + out


def test_the_sets_come_back_after_a_firewall_restart():
    """Emptied sets (a `flush ruleset`, a reboot) are refilled from the state file, without DNS, with the firewall unit."""
    converge_records()
    sync_all()
    DNS.run_expect([0], "systemctl stop lab-dns")
    try:
        for server, flush in ((NFT_HOST, "nft flush set inet jellyfin_hardening jellyfin_allow_v4"),
                              (IPSET_HOST, "ipset flush jfh_jellyfin_allow_v4")):
            server.run_expect([0], flush)
            assert addr(FRIEND1) not in allowed(server)
            server.run_expect([0], "systemctl restart jellyfin-hardening-firewall.service")
            deadline = time.monotonic() + 60
            while addr(FRIEND1) not in allowed(server) and time.monotonic() < deadline:
                time.sleep(1)
            assert addr(FRIEND1) in allowed(server), "the allowlist was not refilled after the firewall restarted"
            assert tcp_open(FRIEND1, server, 8096, 1)
    finally:
        DNS.run_expect([0], "systemctl start lab-dns")
