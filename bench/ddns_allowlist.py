# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time the ddns_allowlist module (ufw backend) against the blog recipe's sequential resolve-then-ufw loop.

    bench/ddns_allowlist.sh [--names 50] [--runs 3] [--delay 0.2]      (from the host: runs this in a lab container)
    python3 bench/ddns_allowlist.py ...                                  (inside a container or VM, as root, ufw installed)

Two lab DNS servers (tests/lab/dnsserver.py) serve the same zone of --names names, each with one distinct TEST-NET
address: a slow one that answers every question --delay seconds late, and a responsive one (no delay).
Measured in the same run, each a median of --runs; every run starts from a clean, enabled ufw (`ufw --force reset`,
`ufw --force enable`) and goes: first run (slow server), no-change run (slow server), no-change run (responsive server).
  naive   for each name in turn, one A question to the server (the collection's dns_query.query, so the resolver is the
          same and only the approach differs), then `ufw allow from ADDR to any port 8096 proto tcp comment naive`
          for its address, one process each, on every run (ufw answers "Skipping adding existing rule").
  recipe  the blog's script as written: the same sequential resolving, then ufw only for the addresses that are not in
          its state file (on a no-change run: no ufw at all). Its first run is the naive loop's.
  module  ddns_allowlist.apply() with backend ufw (in this process: the interpreter's start and imports are not
          counted): A and AAAA for every name concurrently, then ufw only for the difference. Its time is split into
          resolve_all, the ufw processes it runs and the rest (lock, reading ufw's rule files, the state file).
The module's no-change run against the responsive server is also timed as a whole new process, as the timer runs it.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.environ.get("JFH_COLLECTIONS", "/usr/local/lib/jellyfin-hardening"))

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import ddns_allowlist, dns_query  # noqa: E402

DNSSERVER = os.environ.get("JFH_DNSSERVER", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lab", "dnsserver.py"))
SERVER = "127.0.0.1"
PORT = 8096
SET_NAME = "bench"
WORK = tempfile.mkdtemp(prefix="jfh-bench-ddns-")
STATE_FILE = os.path.join(WORK, "allowlist-state.json")
LOCK_FILE = os.path.join(WORK, "allowlist.lock")


class Clock(object):
    """Wall time and calls of the functions wrapped by time_calls()."""

    def __init__(self):
        self.seconds, self.calls = {}, {}

    def add(self, what, seconds):
        self.seconds[what] = self.seconds.get(what, 0.0) + seconds
        self.calls[what] = self.calls.get(what, 0) + 1


CLOCK = Clock()


def time_calls(owner, attribute, what):
    original = getattr(owner, attribute)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            CLOCK.add(what, time.perf_counter() - start)
    setattr(owner, attribute, timed)


# apply() looks both up in its module when it runs: wrapping them there times every call it makes.
time_calls(ddns_allowlist, "resolve_all", "dns")
time_calls(ddns_allowlist, "_ufw", "ufw")


def make_zone(count):
    """{name: [address]}: count names, each with its own TEST-NET-2 or TEST-NET-3 address.

    No two addresses are adjacent, so none merge into a wider network: one ufw rule per name, as in the recipe.
    """
    if count > 160:
        raise SystemExit("--names: at most 160 (non-adjacent addresses in 198.51.100.0/24 and 203.0.113.0/24)")
    zone = {}
    for index in range(count):
        net = "198.51.100" if index % 2 == 0 else "203.0.113"
        zone["friend%02d.ddns.bench.example" % (index + 1)] = ["%s.%d" % (net, 10 + 3 * (index // 2))]
    return zone


def start_server(zone_file, port, delay):
    server = subprocess.Popen([sys.executable, DNSSERVER, "serve", zone_file, "--address", SERVER, "--port", str(port),
                               "--delay", str(delay)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            dns_query.query("friend01.ddns.bench.example", "A", SERVER, port, timeout=1, tries=1)
            return server
        except dns_query.DnsFailure:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the lab DNS server on port %d did not answer" % port)


def ufw(args):
    return subprocess.run(["ufw"] + args, capture_output=True, text=True, check=True).stdout


def clean_ufw():
    ufw(["--force", "reset"])
    ufw(["--force", "enable"])
    for path in (STATE_FILE, os.path.join(WORK, "recipe-state.txt")):
        if os.path.exists(path):
            os.remove(path)


def sequential(names, port):
    """The recipe's resolving: one A question after the other. ({name: address}, DNS seconds)."""
    start = time.perf_counter()
    found = {}
    for name in names:
        addresses = dns_query.query(name, "A", SERVER, port)
        if addresses:
            found[name] = addresses[0]
    return found, time.perf_counter() - start


def allow(address):
    ufw(["allow", "from", address, "to", "any", "port", str(PORT), "proto", "tcp", "comment", "naive"])


def naive_run(names, port):
    """Resolve every name in turn, then one `ufw allow` process per address, on every run."""
    start = time.perf_counter()
    found, dns = sequential(names, port)
    ufw_start = time.perf_counter()
    for address in found.values():
        allow(address)
    end = time.perf_counter()
    return {"total": end - start, "dns": dns, "ufw": end - ufw_start, "ufw_calls": len(found), "other": ufw_start - start - dns}


def recipe_run(names, port):
    """The blog's script: resolve every name in turn, then ufw only for what differs from its state file."""
    path = os.path.join(WORK, "recipe-state.txt")
    start = time.perf_counter()
    found, dns = sequential(names, port)
    current = set(found.values())
    previous = set(open(path).read().split()) if os.path.exists(path) else set()
    ufw_start = time.perf_counter()
    for address in sorted(previous - current):
        ufw(["delete", "allow", "from", address, "to", "any", "port", str(PORT), "proto", "tcp"])
    for address in sorted(current - previous):
        allow(address)
    ufw_seconds = time.perf_counter() - ufw_start
    with open(path, "w") as handle:
        handle.write("\n".join(sorted(current)))
    total = time.perf_counter() - start
    return {"total": total, "dns": dns, "ufw": ufw_seconds, "ufw_calls": len(previous ^ current), "other": total - dns - ufw_seconds}


def module_config(names, port):
    return {"hostnames": names, "backend": "ufw", "nameservers": ["%s:%d" % (SERVER, port)], "ports": [PORT],
            "state_file": STATE_FILE, "set_name": SET_NAME}


def module_run(names, port, expect_change):
    CLOCK.seconds, CLOCK.calls = {}, {}
    start = time.perf_counter()
    result = ddns_allowlist.apply(module_config(names, port), lock_file=LOCK_FILE)
    total = time.perf_counter() - start
    if result["changed"] != expect_change or len(result["allowed"]) != len(names) or result["unresolved"]:
        raise RuntimeError("the module run did not do what this phase times: changed=%s, %d allowed, unresolved %s"
                           % (result["changed"], len(result["allowed"]), result["unresolved"]))
    dns, ufw_seconds = CLOCK.seconds.get("dns", 0.0), CLOCK.seconds.get("ufw", 0.0)
    return {"total": total, "dns": dns, "ufw": ufw_seconds, "ufw_calls": CLOCK.calls.get("ufw", 0),
            "other": total - dns - ufw_seconds}


def module_process_run(names, port):
    """The no-change run as a new process, as the timer starts it: interpreter, imports, apply()."""
    code = ("import json,sys; sys.path.insert(0, %r);"
            "from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import ddns_allowlist;"
            "r = ddns_allowlist.apply(json.loads(sys.argv[1]), lock_file=%r); sys.exit(1 if r['changed'] else 0)"
            % (sys.path[0], LOCK_FILE))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, json.dumps(module_config(names, port))], check=True)
    return {"total": time.perf_counter() - start}


def check_rules(comment, count):
    rules = [r for r in ddns_allowlist.ufw_rules() if r["comment"] == comment and r["action"] == "allow"]
    if len(rules) != count:
        raise RuntimeError("%d ufw allow rules with comment %r, expected %d" % (len(rules), comment, count))


def one_round(names, slow, fast):
    """One clean start for each approach: first run (slow DNS), no-change (slow), no-change (responsive)."""
    out = {}
    clean_ufw()
    out["a", "naive"] = naive_run(names, slow)
    out["b", "naive"] = naive_run(names, slow)
    out["c", "naive"] = naive_run(names, fast)
    check_rules("naive", len(names))
    clean_ufw()
    # The recipe's first run is the naive loop's; it is timed again only to set up its state file.
    recipe_run(names, slow)
    out["b", "recipe"] = recipe_run(names, slow)
    out["c", "recipe"] = recipe_run(names, fast)
    check_rules("naive", len(names))
    clean_ufw()
    out["a", "module"] = module_run(names, slow, True)
    out["b", "module"] = module_run(names, slow, False)
    out["c", "module"] = module_run(names, fast, False)
    out["c", "module process"] = module_process_run(names, fast)
    check_rules(SET_NAME, len(names))
    return out


PHASES = [("a", "first run", "slow"), ("b", "no-change run", "slow"), ("c", "no-change run", "fast")]
APPROACHES = ["naive", "recipe", "module", "module process"]


def median(rounds, key, field):
    values = [r[key][field] for r in rounds if key in r and field in r[key]]
    return statistics.median(values) if values else None


def ratio(value):
    return "%.1fx" % value if value >= 10 else "%.2fx" % value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the slow DNS server waits before each answer")
    parser.add_argument("--port", type=int, default=5353, help="the slow server's port; the responsive one is on the next")
    args = parser.parse_args()
    zone = make_zone(args.names)
    names = sorted(zone)
    zone_file = os.path.join(WORK, "zone.json")
    with open(zone_file, "w") as handle:
        json.dump(zone, handle)
    servers = [start_server(zone_file, args.port, args.delay), start_server(zone_file, args.port + 1, 0)]
    delays = {"slow": "%d ms" % round(args.delay * 1000), "fast": "0 ms"}
    ufw_version = ufw(["version"]).splitlines()[0]
    try:
        rounds = []
        for number in range(args.runs):
            rounds.append(one_round(names, args.port, args.port + 1))
            print(json.dumps({"round": number + 1, "results": {"%s %s" % k: v for k, v in sorted(rounds[-1].items())}}), flush=True)
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        clean_ufw()
        ufw(["--force", "disable"])
        shutil.rmtree(WORK, ignore_errors=True)
    print("%d names, one address each; %s; Python %s; median of %d runs, each from a clean ufw"
          % (args.names, ufw_version, sys.version.split()[0], args.runs))
    print("| phase | DNS answers after | approach | total (s) | DNS (s) | ufw (s) | ufw processes | other (s) | approach / module |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for phase, title, speed in PHASES:
        module_total = median(rounds, (phase, "module"), "total")
        for approach in APPROACHES:
            key = (phase, approach)
            if not any(key in r for r in rounds):
                continue
            cells = [median(rounds, key, f) for f in ("total", "dns", "ufw", "ufw_calls", "other")]
            print("| (%s) %s | %s | %s | %.3f | %s | %s | %s | %s | %s |" % (
                phase, title, delays[speed], approach if approach != "recipe" else "recipe (state-file diff)", cells[0],
                "-" if cells[1] is None else "%.3f" % cells[1], "-" if cells[2] is None else "%.3f" % cells[2],
                "-" if cells[3] is None else "%d" % cells[3], "-" if cells[4] is None else "%.3f" % cells[4],
                "-" if approach.startswith("module") else ratio(cells[0] / module_total)))
    print()
    for phase, title, speed in PHASES:
        module_total = median(rounds, (phase, "module"), "total")
        parts = ["%s / module = %s" % (approach, ratio(median(rounds, (phase, approach), "total") / module_total))
                 for approach in ("naive", "recipe") if any((phase, approach) in r for r in rounds)]
        print("(%s) %s, DNS after %s: %s" % (phase, title, delays[speed], "; ".join(parts)))


if __name__ == "__main__":
    main()
