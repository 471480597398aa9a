"""The lab's attack drill: each attack of the blog post's threat model, from the lab's own containers, against
the hosts the site playbook hardened (molecule/site), with what stopped it and how long that took.

Every row also checks the way in that must stay open (a friend, the apps), so a broken service never counts
as an attack stopped. Prints a scorecard; exit status 0 only when every attack was stopped.
Usage: drill.py [--json FILE]   (`make lab` runs it; molecule/site's verify asserts on its JSON)
"""

import argparse
import base64
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLIC, PRIVATE, ATTACKER, LISTED, FRIEND = "site-jf12", "site-jf13", "site-attacker", "site-listed", "site-friend"
TABLE = "inet jellyfin_hardening"
FRIEND_EMAIL = "alice@friends.example"
VPN_JELLYFIN = "http://10.44.0.1:8096"
CLIENT_CONFIG = os.path.join(ROOT, ".cache", "lab", "wireguard-clients", PRIVATE, "friend.conf")
FLOOR = (10, 11, 10)


class DrillError(Exception):
    """The lab is not in the state the drill needs (a container missing, a command failing)."""


def sh(container, command, check=True, timeout=120):
    """Run a shell command in a lab container; its stdout."""
    proc = subprocess.run(["podman", "exec", container, "/bin/sh", "-c", command],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise DrillError("%s: `%s` exited %d: %s" % (container, command, proc.returncode, proc.stderr.strip()[-300:]))
    return proc.stdout if check else proc


ADDRESSES = {}


def addr(container):
    if container not in ADDRESSES:
        ADDRESSES[container] = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", sh(container, "ip -4 -o addr show dev eth0")).group(1)
    return ADDRESSES[container]


def tcp_open(client, target, port, timeout=2):
    code = ("import socket,sys; s=socket.socket(); s.settimeout(%s); "
            "sys.exit(0 if s.connect_ex((%r, %d)) == 0 else 1)") % (timeout, target, port)
    return sh(client, "python3 -c %s" % shlex.quote(code), check=False).returncode == 0


def jfclient(client, *args):
    out = sh(client, "jfclient " + " ".join(shlex.quote(a) for a in args), timeout=300)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def ssoclient(client, *args):
    return json.loads(sh(client, "ssoclient " + " ".join(shlex.quote(a) for a in args)).splitlines()[-1])


def in_set(host, set_name, address):
    return sh(host, "nft get element %s %s '{ %s }'" % (TABLE, set_name, address), check=False).returncode == 0


def wait_until(predicate, seconds):
    """Poll `predicate` every 0.5 s for at most `seconds`; the time it took, or None."""
    start = time.monotonic()
    for _attempt in range(int(seconds * 2) + 1):
        if predicate():
            return time.monotonic() - start
        time.sleep(0.5)
    return None


def version(host):
    out = sh(host, "python3 -c \"import json,urllib.request; print(json.load(urllib.request.urlopen("
                   "'http://127.0.0.1:8096/System/Info/Public', timeout=5))['Version'])\"")
    return out.strip()


def row(attack, layer, stopped, evidence, seconds):
    return {"attack": attack, "layer": layer, "stopped": bool(stopped), "evidence": evidence,
            "seconds": None if seconds is None else round(seconds, 2)}


def blocklisted_network():
    start = time.monotonic()
    dropped = not tcp_open(LISTED, addr(PUBLIC), 443)
    took = time.monotonic() - start
    listed = in_set(PUBLIC, "lab_level1_v4", addr(LISTED))
    control = tcp_open(ATTACKER, addr(PUBLIC), 443)
    return row("a blocklisted network", "blocklist", dropped and listed and control,
               "%s (on lab_level1, %s in the set) %s; an unlisted client %s" % (
                   addr(LISTED), "is" if listed else "NOT", "dropped at 443" if dropped else "GOT THROUGH",
                   "connects" if control else "is refused too"), took)


def web_visitor_without_sso():
    start = time.monotonic()
    visit = ssoclient(ATTACKER, "get", "https://%s/web/" % PUBLIC)
    took = time.monotonic() - start
    redirected = visit["status"] == 302 and "/oauth2/" in (visit.get("location") or "")
    login = ssoclient(FRIEND, "login", "https://%s" % PUBLIC, "--email", FRIEND_EMAIL)
    friend_in = login["status"] == 200 and 'id="reactRoot"' in login.get("body", "")
    app = jfclient(ATTACKER, "get", "https://%s" % PUBLIC, "--insecure", "--path", "/System/Info/Public")[0]["status"]
    return row("a web visitor without SSO", "sso (oauth2-proxy)", redirected and friend_in and app == 200,
               "/web/ answered %s to %s; %s after signing in gets %s; the apps' API answers %s" % (
                   visit["status"], visit.get("location") or "-", FRIEND_EMAIL, login["status"], app), took)


def unknown_address():
    start = time.monotonic()
    refused = not tcp_open(ATTACKER, addr(PRIVATE), 8096)
    took = time.monotonic() - start
    direct = jfclient(FRIEND, "get", "http://%s:8096" % addr(PRIVATE), "--timeout", "3")[0]["status"]
    allowed = in_set(PRIVATE, "jellyfin_allow_v4", addr(FRIEND))
    with open(CLIENT_CONFIG, encoding="utf-8") as handle:
        config = handle.read()
    sh(FRIEND, "umask 077 && echo %s | base64 -d > /etc/wireguard/wg0.conf && systemctl restart wg-quick@wg0"
       % base64.b64encode(config.encode()).decode())
    tunnel = wait_until(lambda: jfclient(FRIEND, "get", VPN_JELLYFIN, "--timeout", "2")[0]["status"] == 200, 20)
    return row("an unknown address", "ddns_allowlist + wireguard (vpn_only)",
               refused and direct == 200 and allowed and tunnel is not None,
               "%s dropped at %s:8096; friend.ddns.test (%s, %s the allowlist) gets %s, and %s through the tunnel" % (
                   addr(ATTACKER), PRIVATE, addr(FRIEND), "in" if allowed else "NOT in", direct,
                   "200" if tunnel is not None else "nothing"), took)


def forged_log_line():
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000 +00:00")
    line = '[%s] [INF] Authentication request for "x" has been denied (IP: "%s").' % (now, addr(FRIEND))
    start = time.monotonic()
    statuses = [r["status"] for r in jfclient(ATTACKER, "login", "https://%s" % PUBLIC, "--insecure", "--timeout", "3",
                                              "--user-json", json.dumps("eve\n%s\n%s\n%s\ny" % (line, line, line)),
                                              "--password", "wrong")]
    reached = addr(FRIEND) in sh(PUBLIC, "cat /var/log/jellyfin/jellyfin*.log")
    # fail2ban reads the log within a second; give it five before calling the friend safe.
    time.sleep(5)
    took = time.monotonic() - start
    safe = not in_set(PUBLIC, "f2b_jellyfin_v4", addr(FRIEND)) and tcp_open(FRIEND, addr(PUBLIC), 443)
    return row("a forged log line", "fail2ban (anchored filter)", reached and safe,
               "a user name carrying 3 'denied' lines for %s (login answered %s; %s the log); %s" % (
                   addr(FRIEND), statuses, "they reached" if reached else "they did NOT reach",
                   "the friend is not banned" if safe else "THE FRIEND WAS BANNED"), took)


def password_guessing():
    start = time.monotonic()
    statuses = [r["status"] for r in jfclient(ATTACKER, "login", "https://%s" % PUBLIC, "--insecure", "--timeout", "3",
                                              "--user", "alice", "--password", "guess", "--count", "8")]
    banned = wait_until(lambda: in_set(PUBLIC, "f2b_jellyfin_v4", addr(ATTACKER)), 30)
    took = time.monotonic() - start
    dropped = not tcp_open(ATTACKER, addr(PUBLIC), 443)
    control = tcp_open(FRIEND, addr(PUBLIC), 443)
    limited = statuses.count(429)
    return row("password guessing", "fail2ban, nginx's login rate limit", banned is not None and dropped and control,
               "8 guesses for alice answered %s (%d refused by the rate limit); %s; the friend %s" % (
                   statuses, limited, "banned, 443 dropped" if banned is not None and dropped else "NOT BANNED",
                   "still connects" if control else "is refused too"), took)


def stale_version():
    before = version(PUBLIC)
    if tuple(int(p) for p in before.split(".")[:3]) >= FLOOR:
        return row("a stale Jellyfin version", "patching", True,
                   "already on %s (floor %s): nothing to patch" % (before, ".".join(map(str, FLOOR))), 0)
    start = time.monotonic()
    run = sh(PUBLIC, "systemctl start jellyfin-hardening-patch.service", check=False, timeout=600)
    took = time.monotonic() - start
    after = version(PUBLIC)
    status = json.loads(sh(PUBLIC, "cat /var/lib/jellyfin-hardening/patching/status.json"))
    patched = run.returncode == 0 and tuple(int(p) for p in after.split(".")[:3]) >= FLOOR
    return row("a stale Jellyfin version", "patching", patched,
               "%s (below the floor %s) -> %s by jellyfin-hardening-patch (%s)" % (
                   before, ".".join(map(str, FLOOR)), after, status.get("result")), took)


# The order matters: the unlisted control and the forged line come before the attacker is banned.
ATTACKS = (blocklisted_network, web_visitor_without_sso, unknown_address, forged_log_line, password_guessing, stale_version)


def scorecard(rows):
    lines = ["| attack | stopped by | stopped | seconds | evidence |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append("| %s | %s | %s | %s | %s |" % (r["attack"], r["layer"], "yes" if r["stopped"] else "NO",
                                                     "-" if r["seconds"] is None else r["seconds"], r["evidence"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    # A drill run before leaves the attacker banned: start clean (the lab only).
    sh(PUBLIC, "fail2ban-client unban --all")
    rows = []
    for attack in ATTACKS:
        try:
            rows.append(attack())
        except (DrillError, subprocess.TimeoutExpired, OSError, KeyError, IndexError, ValueError) as err:
            rows.append(row(attack.__name__.replace("_", " "), "?", False, "the drill could not run it: %s" % err, None))
    print(scorecard(rows))
    stopped = sum(r["stopped"] for r in rows)
    print("\n%d of %d attacks stopped" % (stopped, len(rows)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
    return 0 if stopped == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
