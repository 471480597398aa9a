"""jellyfin-hardening-firewall load|save: load the table and refill its sets, or snapshot them.

Runs the collection's own module_utils (installed beside it by the firewall role): the same code the
modules use.
"""
import sys

sys.path.insert(0, "/usr/local/lib/jellyfin-hardening")

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import firewall_state, nft  # noqa: E402


def main(argv):
    if len(argv) != 2 or argv[1] not in ("load", "save"):
        sys.stderr.write("usage: jellyfin-hardening-firewall load|save\n")
        return 2
    try:
        report = firewall_state.load() if argv[1] == "load" else firewall_state.save()
    except (nft.NftError, OSError, ValueError) as err:
        sys.stderr.write("jellyfin-hardening-firewall %s failed: %s\n" % (argv[1], err))
        return 1
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
