"""jellyfin-hardening-blocklist: refresh the block lists the blocklist role configured.

    refresh [--offline] [--random-delay SECONDS] [NAME ...]

Reads /etc/jellyfin-hardening/blocklist/lists.json and runs, for each list (or the NAMEs given), the
same module_utils code the ip_blocklist module runs. --offline uses the cached copies only (the boot
restore); --random-delay waits up to SECONDS first (the cron job; the timer has RandomizedDelaySec).
Exits 1 when a list was not loaded or a source failed (its cached copy was then used).
"""
import json
import os
import random
import sys
import time

sys.path.insert(0, "/usr/local/lib/jellyfin-hardening")
# Started by cron or by hand with a short PATH: nft, ipset and ip live in the sbin directories.
os.environ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", "")

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist  # noqa: E402

CONFIG = "/etc/jellyfin-hardening/blocklist/lists.json"


def parse_args(args):
    if args[:1] != ["refresh"]:
        return None
    options = {"offline": False, "delay": 0, "names": []}
    rest = args[1:]
    while rest:
        word = rest.pop(0)
        if word == "--offline":
            options["offline"] = True
        elif word == "--random-delay" and rest and rest[0].isdigit():
            options["delay"] = int(rest.pop(0))
        elif not word.startswith("-"):
            options["names"].append(word)
        else:
            return None
    return options


def main(argv):
    options = parse_args(argv[1:])
    if options is None:
        sys.stderr.write(__doc__)
        return 2
    with open(CONFIG) as handle:
        lists = json.load(handle)["lists"]
    unknown = set(options["names"]) - {item["name"] for item in lists}
    if unknown:
        sys.stderr.write("no such list in %s: %s\n" % (CONFIG, ", ".join(sorted(unknown))))
        return 2
    if options["delay"]:
        time.sleep(random.SystemRandom().randint(0, options["delay"]))
    status = 0
    for item in lists:
        if options["names"] and item["name"] not in options["names"]:
            continue
        try:
            result = blocklist.apply(item, offline=options["offline"])
        except blocklist.BlocklistError as err:
            sys.stderr.write("list %s not loaded: %s\n" % (item["name"], err))
            status = 1
            continue
        for failure in result["sources_failed"]:
            sys.stderr.write("list %s: %s; its cached copy was used\n" % (item["name"], failure["error"]))
            status = 1
        print("list %s: %s; %d IPv4 and %d IPv6 entries (+%d -%d), %d invalid lines" % (
            item["name"], "changed" if result["changed"] else "unchanged", result["entries"]["v4"], result["entries"]["v6"],
            sum(result["added"].values()), sum(result["removed"].values()), result["invalid"]))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
