"""jellyfin-hardening-firewall: load the firewall model into the kernel, snapshot its sets, or check it.

    load                      check and load; refill sets that were missing from the snapshot
    save                      snapshot the elements of every set
    check [--base FILE]       validate the model, with a candidate base or layer file swapped in
          [--layer NAME FILE|-]   (`-` checks the model without that layer)

Runs the collection's own module_utils (installed beside it by the firewall role): the same code the
modules use.
"""
import sys

sys.path.insert(0, "/usr/local/lib/jellyfin-hardening")

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import (  # noqa: E402
    firewall_model, firewall_state, ipt, nft)


def main(argv):
    args = argv[1:]
    try:
        if args == ["load"]:
            report = firewall_state.load()
        elif args == ["save"]:
            report = firewall_state.save()
        elif args[:1] == ["check"] and len(args) == 3 and args[1] == "--base":
            report = firewall_state.check(replace={"base": args[2]})
        elif args[:1] == ["check"] and len(args) == 4 and args[1] == "--layer":
            report = firewall_state.check(replace={args[2]: None if args[3] == "-" else args[3]})
        elif args == ["check"]:
            report = firewall_state.check()
        else:
            sys.stderr.write(__doc__)
            return 2
    except (firewall_model.ModelError, nft.NftError, ipt.IptError, OSError, ValueError) as err:
        sys.stderr.write("jellyfin-hardening-firewall %s failed: %s\n" % (" ".join(args), err))
        return 1
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
