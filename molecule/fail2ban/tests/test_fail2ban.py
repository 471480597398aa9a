"""fail2ban against real brute-force attacks from other containers, with real nftables and a real dockerd."""

import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from labhosts import connect, systemctl_settled  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = connect("f2b-native")
DOCKER = connect("f2b-docker")
ATTACKER = connect("f2b-attacker")
BYSTANDER = connect("f2b-bystander")
THIRD = connect("f2b-third")
TABLE = "inet jellyfin_hardening"
MAXRETRY = 3
BENCH = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".cache", "bench")


def ipv4(host):
    return re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", host.check_output("ip -4 -o addr show dev eth0")).group(1)


ADDR = {}


def addr(host):
    if host not in ADDR:
        ADDR[host] = ipv4(host)
    return ADDR[host]


def banned(host, set_name="f2b_jellyfin_v4"):
    """Addresses in a ban set, read from the kernel: f2b-docker runs the firewall's ipset backend."""
    if host == DOCKER:
        out = host.check_output("ipset save jfh_%s" % set_name)
        return sorted(line.split()[2] for line in out.splitlines() if line.startswith("add "))
    data = json.loads(host.check_output("nft -j list set %s %s" % (TABLE, set_name)))
    return sorted(e for obj in data["nftables"] for e in obj.get("set", {}).get("elem", []))


def fail_logins(client, target, port, count, user="mallory", user_json=None):
    """Failed logins as an unknown user (401 each): no account gets locked out however often the tests run."""
    name = "--user-json %s" % shlex.quote(json.dumps(user_json)) if user_json is not None else "--user %s" % shlex.quote(user)
    command = "jfclient login http://%s:%d %s --password wrong --count %d --timeout 3" % (addr(target), port, name, count)
    out = client.check_output(command)
    return [json.loads(line)["status"] for line in out.splitlines()]


def answers(client, target, port):
    out = client.check_output("jfclient get http://%s:%d --timeout 2" % (addr(target), port))
    return json.loads(out)["status"] == 200


def tcp_open(client, target, port):
    code = ("import socket,sys; s=socket.socket(); s.settimeout(2); "
            "sys.exit(0 if s.connect_ex(('%s', %d)) == 0 else 1)") % (addr(target), port)
    return client.run("python3 -c \"%s\"" % code).rc == 0


def wait_for(predicate, what, attempts=60):
    for _attempt in range(attempts):
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out waiting for: " + what)


@pytest.fixture(autouse=True)
def no_bans():
    for host in (NATIVE, DOCKER):
        host.run_expect([0], "fail2ban-client unban --all")
    yield
    for host in (NATIVE, DOCKER):
        host.run("fail2ban-client unban --all")


def test_jails_run_and_sshd_jail_does_not_kill_fail2ban():
    for host in (NATIVE, DOCKER):
        status = host.check_output("fail2ban-client status")
        assert "jellyfin" in status and "recidive" in status and "sshd" in status, status
        jail = host.check_output("fail2ban-client status jellyfin")
        assert "File list:" in jail
    assert "/var/log/jellyfin/jellyfin" in NATIVE.check_output("fail2ban-client status jellyfin")
    assert "/srv/jellyfin/config/log/log_" in DOCKER.check_output("fail2ban-client status jellyfin")


def test_below_maxretry_passes_maxretry_bans_and_bantime_unbans():
    assert fail_logins(ATTACKER, NATIVE, 8096, MAXRETRY - 1) == [401] * (MAXRETRY - 1)
    time.sleep(3)
    assert addr(ATTACKER) not in banned(NATIVE)
    assert answers(ATTACKER, NATIVE, 8096), "fewer failures than maxretry already cut the client off"
    assert tcp_open(ATTACKER, NATIVE, 22)
    fail_logins(ATTACKER, NATIVE, 8096, 1)
    wait_for(lambda: addr(ATTACKER) in banned(NATIVE), "the attacker's ban")
    assert not tcp_open(ATTACKER, NATIVE, 8096) and not tcp_open(ATTACKER, NATIVE, 8080)
    assert answers(BYSTANDER, NATIVE, 8096) and answers(BYSTANDER, NATIVE, 8080), "a bystander lost access"
    assert tcp_open(ATTACKER, NATIVE, 22), "the default ban covers only Jellyfin's ports"
    # bantime is 20 s in this scenario.
    wait_for(lambda: addr(ATTACKER) not in banned(NATIVE), "the unban after bantime", attempts=120)
    assert answers(ATTACKER, NATIVE, 8096)


def test_behind_nginx_the_client_is_banned_never_the_proxy():
    assert "<string>127.0.0.1</string>" in NATIVE.check_output("cat /etc/jellyfin/network.xml")
    fail_logins(ATTACKER, NATIVE, 8080, MAXRETRY)
    wait_for(lambda: addr(ATTACKER) in banned(NATIVE), "the attacker's ban through the proxy")
    assert banned(NATIVE) == [addr(ATTACKER)]
    assert "127.0.0.1" not in NATIVE.check_output("fail2ban-client status jellyfin")
    assert answers(BYSTANDER, NATIVE, 8080), "the proxy (and everyone behind it) was cut off"


def test_docker_published_port_is_banned():
    assert DOCKER.check_output("iptables -S DOCKER-USER").splitlines()[1] == "-A DOCKER-USER -j JFH-FORWARD"
    assert fail_logins(ATTACKER, DOCKER, 8097, MAXRETRY) == [401] * MAXRETRY
    wait_for(lambda: addr(ATTACKER) in banned(DOCKER), "the ban on the Docker host")
    assert not tcp_open(ATTACKER, DOCKER, 8097), "the ban did not cover the Docker-published port"
    assert answers(BYSTANDER, DOCKER, 8097)


@pytest.mark.parametrize("layout", ["native", "docker"])
def test_forged_line_in_a_user_name_bans_nobody_but_the_sender(layout):
    host, port = (NATIVE, 8096) if layout == "native" else (DOCKER, 8097)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000 +00:00")
    component = "" if layout == "native" else "[12] Jellyfin.Server.Implementations.Users.UserManager: "
    forged = '\n[%s] [INF] %sAuthentication request for "x" has been denied (IP: "%s").\n' % (now, component, addr(THIRD))
    fail_logins(ATTACKER, host, port, MAXRETRY, user_json="eve" + forged + "y")
    log = host.check_output("cat %s" % ("/var/log/jellyfin/jellyfin*.log" if layout == "native" else "/srv/jellyfin/config/log/log_*.log"))
    assert addr(THIRD) in log, "the forged line did not reach the log: the test would prove nothing"
    wait_for(lambda: addr(ATTACKER) in banned(host), "the sender's own ban")
    time.sleep(2)
    assert addr(THIRD) not in banned(host) and answers(THIRD, host, port), "a forged line banned an innocent address"


def test_recidive_bans_every_port_but_the_management_path():
    assert tcp_open(BYSTANDER, NATIVE, 22), "nothing listens on 22: the test below would prove nothing"
    NATIVE.run_expect([0], "fail2ban-client set recidive banip %s" % addr(BYSTANDER))
    assert addr(BYSTANDER) in banned(NATIVE, "f2b_recidive_v4")
    assert not tcp_open(BYSTANDER, NATIVE, 22) and not tcp_open(BYSTANDER, NATIVE, 8096)


def test_bans_survive_restarts_of_fail2ban_and_nftables():
    NATIVE.run_expect([0], "fail2ban-client set jellyfin bantime 3600")
    try:
        NATIVE.run_expect([0], "fail2ban-client set jellyfin banip %s" % addr(BYSTANDER))
        systemctl_settled(NATIVE, "restart", "nftables.service", "jellyfin-hardening-firewall.service")
        assert banned(NATIVE) == [addr(BYSTANDER)], "an nftables restart lost the ban"
        NATIVE.run_expect([0], "systemctl restart fail2ban")
        wait_for(lambda: banned(NATIVE) == [addr(BYSTANDER)], "the ban back after a fail2ban restart")
        assert not tcp_open(BYSTANDER, NATIVE, 8096)
    finally:
        NATIVE.run("fail2ban-client set jellyfin bantime 20")


def test_a_new_day_log_file_is_read_and_bans_are_kept():
    NATIVE.run_expect([0], "fail2ban-client set jellyfin banip 198.51.100.78")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000 +00:00")
    line = '[%s] [INF] Authentication request for "bob" has been denied (IP: "198.51.100.77").' % now
    NATIVE.run_expect([0], "for i in 1 2 3; do echo '%s' >> /var/log/jellyfin/jellyfin20991231.log; done" % line)
    try:
        wait_for(lambda: "198.51.100.77" in banned(NATIVE), "a ban from the new log file")
        assert "198.51.100.78" in banned(NATIVE), "reloading the jail for the new file lost a ban"
    finally:
        NATIVE.run("rm -f /var/log/jellyfin/jellyfin20991231.log")


def run_guard(extra_vars):
    return subprocess.run(["ansible-playbook", "-i", INVENTORY, os.path.join(SCENARIO, "guard.yml"), "-e", json.dumps(extra_vars)],
                          capture_output=True, text=True, timeout=600, check=False)


def test_role_refuses_a_proxy_missing_from_known_proxies_and_a_maxretry_above_lockout():
    before = NATIVE.check_output("sha256sum /etc/fail2ban/jail.d/jellyfin-hardening.local /etc/jellyfin/network.xml")
    proc = run_guard({"fail2ban_manage_known_proxies": False, "fail2ban_jellyfin_lockout_attempts": 10,
                      "jellyfin_hardening_reverse_proxy_addresses": ["127.0.0.1", "192.0.2.10"]})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "KnownProxies" in out and "192.0.2.10" in out, out[-3000:]
    proc = run_guard({"fail2ban_maxretry": 3, "fail2ban_jellyfin_lockout_attempts": 0})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "fail2ban_maxretry" in out and "lock an account" in out, out[-3000:]
    assert NATIVE.check_output("sha256sum /etc/fail2ban/jail.d/jellyfin-hardening.local /etc/jellyfin/network.xml") == before


def test_time_from_last_failure_to_ban_is_recorded():
    """Measures, never asserts a time: Jellyfin's log time of the last failure to fail2ban's Ban time, same clock."""
    latencies = []
    for _run in range(5):
        NATIVE.run_expect([0], "fail2ban-client unban --all")
        fail_logins(ATTACKER, NATIVE, 8096, MAXRETRY)
        wait_for(lambda: addr(ATTACKER) in banned(NATIVE), "the attacker's ban")
        last = NATIVE.check_output("grep -h '^\\[.* for \"mallory\" has been denied (IP: \"%s\")' /var/log/jellyfin/jellyfin*.log | tail -1" % addr(ATTACKER))
        ban = NATIVE.check_output("grep -h 'Ban %s$' /var/log/fail2ban.log | tail -1" % addr(ATTACKER))
        failed_at = datetime.datetime.strptime(last[1:31], "%Y-%m-%d %H:%M:%S.%f %z")
        banned_at = datetime.datetime.strptime(ban[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=failed_at.tzinfo)
        latencies.append((banned_at - failed_at).total_seconds())
    assert all(value >= 0 for value in latencies), latencies
    os.makedirs(BENCH, exist_ok=True)
    with open(os.path.join(BENCH, "fail2ban-ban-latency.json"), "w") as handle:
        json.dump({"runs": latencies, "median": statistics.median(latencies)}, handle)
    print("last failure to ban, seconds: runs %s, median %.3f" % (latencies, statistics.median(latencies)))
