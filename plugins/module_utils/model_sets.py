# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and replace the content of a firewall-model set (both families) on either backend.

The block lists and the DDNS allowlist fill their sets through these two functions; the sets themselves
are declared by their layer in the firewall model (firewall_model.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist_entries as entries
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import firewall_model, ipt, nft

# A temporary ipset for the swap: 'jft_' keeps it out of the collection's 'jfh_' sets (31 characters at most).
SWAP_PREFIX = "jft_"


def read_sets(name, backend):
    """{'v4': [cidr, ...] or None when the set does not exist, 'v6': ...} as in force now."""
    result = {}
    tool = "nft" if backend == "nftables" else "ipset"
    for family, set_name in firewall_model.set_names(name, backend).items():
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            # Not installed yet (a first check-mode run): no set either.
            result[family] = None
            continue
        if backend == "nftables":
            found = nft.sets_of(nft.list_set(set_name)).get(set_name)
            # nft merges adjacent networks into ranges: bring them back to our CIDRs.
            result[family] = entries.normalize(found["elements"], family) if found else None
        else:
            # ipset keeps and lists exactly the CIDRs it was given, in our spelling: no normalizing needed.
            found = ipt.ipset_sets(set_name).get(set_name)
            result[family] = found["elements"] if found else None
    return result


def write_sets(name, backend, wanted):
    """Replace both sets' content in one step: one nft transaction, or ipset restore into a new set and swap."""
    names = firewall_model.set_names(name, backend)
    if backend == "nftables":
        text = "".join("flush set %s %s %s\n" % (nft.TABLE_FAMILY, nft.TABLE_NAME, names[f]) +
                       nft.elements_command(names[f], wanted[f]) for f in sorted(wanted))
        nft.run_nft(["-f", "-"], stdin=text, timeout=120)
        return
    for family, cidrs in sorted(wanted.items()):
        swap = SWAP_PREFIX + names[family][len(ipt.SET_PREFIX):]
        ipt.run(["ipset", "destroy", swap], ok_codes=(0, 1))
        # Sized to fit: maxelem with room to grow, hashsize so the restore never rehashes.
        hashsize = 1024
        while hashsize < len(cidrs) // 2:
            hashsize *= 2
        lines = ["create %s hash:net family %s hashsize %d maxelem %d" % (
            swap, "inet" if family == "v4" else "inet6", hashsize, max(65536, 2 * len(cidrs)))]
        lines += ["add %s %s" % (swap, cidr) for cidr in cidrs]
        lines += ["swap %s %s" % (swap, names[family]), "destroy %s" % swap]
        try:
            ipt.run(["ipset", "restore"], stdin="\n".join(lines) + "\n", timeout=120)
        finally:
            ipt.run(["ipset", "destroy", swap], ok_codes=(0, 1))
