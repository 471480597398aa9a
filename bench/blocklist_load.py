# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time the ip_blocklist load against a bare `ipset restore`/`nft -f` of the same entries and the per-line loop.

    bench/blocklist_load.sh [--sizes 4500,100000] [--runs 5]      (from the host: runs this in a lab container)
    python3 bench/blocklist_load.py ...                             (inside a container or VM, as root)

For each size, a FireHOL-like list (networks of /16 to /32, some overlapping, comments) is written to a file.
Measured in the same run, each a median of --runs:
  module    blocklist.apply() on a file:// source: read, parse, validate, collapse, exclude, compare with the set in
            force, load (ipset restore into a new set + swap, or one nft transaction), write the cache. Every run
            replaces a set holding the other of two lists, so every entry changes.
  bare      the kernel load alone, of the module's own prepared entries: `ipset restore` of create + adds + swap +
            destroy, or `nft -f` of flush + add element.
  loop      the blog recipe: `ipset add` once per line (one run; it is slow).
Peak memory is the maximum resident size of the process doing the work (Python for the module, the tool for bare).
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.environ.get("JFH_COLLECTIONS", "/usr/local/lib/jellyfin-hardening"))

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist_entries  # noqa: E402

NAME = "bench"
WORK = tempfile.mkdtemp(prefix="jfh-bench-")


def make_list(size, seed):
    rng = random.Random(seed)
    lines = ["# bench list, seed %d" % seed, "#"]
    while len(lines) < size + 2:
        prefix = rng.choice([16, 20, 22, 24, 24, 24, 28, 32, 32, 32])
        address = rng.randrange(1 << 24, 223 << 24) >> (32 - prefix) << (32 - prefix)
        lines.append("%d.%d.%d.%d%s" % (address >> 24, (address >> 16) & 255, (address >> 8) & 255, address & 255,
                                        "" if prefix == 32 else "/%d" % prefix))
    path = os.path.join(WORK, "list-%d-%d.netset" % (size, seed))
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def sh(cmd, stdin=None):
    subprocess.run(cmd, input=stdin, text=True, check=True, capture_output=True)


def setup(backend):
    if backend == "ipset":
        for fam, family in (("v4", "inet"), ("v6", "inet6")):
            subprocess.run(["ipset", "destroy", "jfh_%s_%s" % (NAME, fam)], capture_output=True, check=False)
            sh(["ipset", "create", "jfh_%s_%s" % (NAME, fam), "hash:net", "family", family])
    else:
        sh(["nft", "-f", "-"], "add table inet jellyfin_hardening\n"
           "add set inet jellyfin_hardening %s_v4 { type ipv4_addr; flags interval; auto-merge; }\n"
           "add set inet jellyfin_hardening %s_v6 { type ipv6_addr; flags interval; auto-merge; }\n" % (NAME, NAME))


def module_run(backend, path):
    """One apply() in a child process: its wall time and its peak RSS."""
    code = ("import json,resource,sys,time; sys.path.insert(0, %r);"
            "from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist;"
            "t=time.perf_counter(); r=blocklist.apply({'name': %r, 'sources': ['file://%s'], 'backend': %r, 'max_change_ratio': 1,"
            " 'exclude_defaults': ['private', 'loopback', 'link_local'], 'cache_dir': %r}, lock_file=%r);"
            "print(json.dumps([time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, r['entries'], r['changed']]))"
            % (sys.path[0], NAME, path, backend, os.path.join(WORK, "cache"), os.path.join(WORK, "lock")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, rss, entries, changed = json.loads(out)
    assert changed, "the module run changed nothing: the benchmark would time a no-op"
    return seconds, rss, entries


def prepared(path):
    ranges, _bad = blocklist_entries.parse(open(path).read())
    return blocklist_entries.build([ranges], [d for k in ("private", "loopback", "link_local") for d in blocklist_entries.DEFAULT_EXCLUDES[k]])


def bare_run(backend, cidrs):
    """The kernel load alone, of the same entries, timed around the tool's process."""
    if backend == "ipset":
        lines = []
        for fam, family in (("v4", "inet"), ("v6", "inet6")):
            tmp, live = "jft_%s_%s" % (NAME, fam), "jfh_%s_%s" % (NAME, fam)
            lines.append("create %s hash:net family %s maxelem %d" % (tmp, family, max(65536, 2 * len(cidrs[fam]))))
            lines += ["add %s %s" % (tmp, c) for c in cidrs[fam]]
            lines += ["swap %s %s" % (tmp, live), "destroy %s" % tmp]
        text, cmd = "\n".join(lines) + "\n", ["ipset", "restore"]
    else:
        text = "".join("flush set inet jellyfin_hardening %s_%s\n" % (NAME, fam) +
                       ("add element inet jellyfin_hardening %s_%s { %s }\n" % (NAME, fam, ", ".join(cidrs[fam])) if cidrs[fam] else "")
                       for fam in ("v4", "v6"))
        cmd = ["nft", "-f", "-"]
    # A fresh parent per run, so the peak RSS is the tool's own and not an earlier child's.
    wrapper = ("import json,resource,subprocess,sys,time; t=time.perf_counter();"
               "subprocess.run(sys.argv[1:], stdin=sys.stdin, check=True, capture_output=True);"
               "print(json.dumps([time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", wrapper] + cmd, input=text, text=True, check=True, capture_output=True).stdout
    return tuple(json.loads(out))


def loop_run(path):
    subprocess.run(["ipset", "create", "loop_bench", "hash:net", "maxelem", "1048576", "-exist"], check=True)
    sh(["ipset", "flush", "loop_bench"])
    script = 'grep -v "^#" "$1" | while read -r net; do ipset add loop_bench "$net" -exist; done'
    start = time.perf_counter()
    sh(["bash", "-c", script, "loop", path])
    seconds = time.perf_counter() - start
    sh(["ipset", "destroy", "loop_bench"])
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="4500,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-loop", action="store_true", help="skip the per-line loop (about 2 minutes at 100,000)")
    args = parser.parse_args()
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        lists = [make_list(size, 1), make_list(size, 2)]
        row = {"size": size}
        for backend in ("ipset", "nftables"):
            setup(backend)
            module_run(backend, lists[1])
            runs = [module_run(backend, lists[i % 2]) for i in range(args.runs)]
            cidrs = [prepared(p) for p in lists]
            bare = [bare_run(backend, cidrs[i % 2]) for i in range(args.runs)]
            row[backend] = {
                "entries": runs[0][2],
                "module_s": statistics.median(r[0] for r in runs), "module_peak_rss_kib": max(r[1] for r in runs),
                "bare_s": statistics.median(b[0] for b in bare), "bare_peak_rss_kib": max(b[1] for b in bare)}
            row[backend]["module_vs_bare"] = row[backend]["module_s"] / row[backend]["bare_s"]
        if not args.no_loop:
            row["loop_s"] = loop_run(lists[0])
            row["loop_vs_module"] = row["loop_s"] / row["ipset"]["module_s"]
        results.append(row)
        print(json.dumps(row), flush=True)
    print("| entries in the list | backend | set entries after collapse | module (s) | bare load (s) | module / bare | "
          "per-line loop (s) | loop / module | module peak RSS (MiB) | bare peak RSS (MiB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in results:
        for backend in ("ipset", "nftables"):
            r = row[backend]
            loop = ("%.2f" % row["loop_s"], "%.0fx" % row["loop_vs_module"]) if backend == "ipset" and "loop_s" in row else ("-", "-")
            print("| %d | %s | %d | %.3f | %.3f | %.2f | %s | %s | %.0f | %.0f |" % (
                row["size"], backend, r["entries"]["v4"] + r["entries"]["v6"], r["module_s"], r["bare_s"], r["module_vs_bare"],
                loop[0], loop[1], r["module_peak_rss_kib"] / 1024, r["bare_peak_rss_kib"] / 1024))


if __name__ == "__main__":
    main()
