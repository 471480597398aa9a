"""jellyfin-hardening-allowlist: sync the DDNS allowlist the ddns_allowlist role configured.

    sync [--offline]

Reads /etc/jellyfin-hardening/allowlist/allowlist.json and runs the same module_utils code the
ddns_allowlist module runs. --offline asks no DNS server: every name keeps its last answer from the
state file (the boot refill, before the network is up). Prints one line per run for the journal;
unresolved names and kept addresses go to stderr. Exits 1 when the allowlist could not be brought in force.
"""
import json
import os
import sys

sys.path.insert(0, "/usr/local/lib/jellyfin-hardening")
# Started by cron or by hand with a short PATH: nft, ipset and ufw live in the sbin directories.
os.environ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", "")

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import ddns_allowlist  # noqa: E402

CONFIG = "/etc/jellyfin-hardening/allowlist/allowlist.json"


def main(argv):
    args = argv[1:]
    if args not in (["sync"], ["sync", "--offline"]):
        sys.stderr.write(__doc__)
        return 2
    with open(CONFIG) as handle:
        config = json.load(handle)
    try:
        result = ddns_allowlist.apply(config, offline="--offline" in args)
    except ddns_allowlist.AllowlistError as err:
        sys.stderr.write("allowlist %s not updated, the one in force stays: %s\n" % (config.get("set_name"), err))
        return 1
    for warning in result["warnings"] + result["resolver_errors"]:
        sys.stderr.write(warning + "\n")
    if result["unresolved"]:
        sys.stderr.write("did not resolve: %s; kept: %s\n" % (", ".join(result["unresolved"]), json.dumps(result["kept"], sort_keys=True)))
    print("allowlist %s: %s; %d allowed (+%d -%d)%s" % (
        result["set_name"], "changed" if result["changed"] else "unchanged", len(result["allowed"]),
        len(result["added"]), len(result["removed"]),
        "; added %s" % " ".join(result["added"]) if result["added"] else "") +
        ("; removed %s" % " ".join(result["removed"]) if result["removed"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
