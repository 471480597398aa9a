# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loading the collection's table and carrying its set elements across reboots and nftables restarts.

Run on the host by jellyfin-hardening-firewall.service (through the CLI the firewall role installs)
and by the layer modules after they change a set, so the snapshot is always the last state in force.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import nft

MAIN_RULESET = "/etc/jellyfin-hardening/firewall/main.nft"
SNAPSHOT = "/var/lib/jellyfin-hardening/firewall-sets.json"
# Sets the base ruleset fills itself on every load: never restored from a snapshot.
STATIC_SETS = ("mgmt_v4", "mgmt_v6", "mgmt_ports", "jellyfin_ports")


def load(main=MAIN_RULESET, snapshot=SNAPSHOT, **kwargs):
    """Check and load the ruleset in one transaction; refill the sets when the table had been wiped.

    The ruleset uses `add set` and `flush chain`, so a reload keeps the elements of every set. Only when
    the table was gone (boot, or `flush ruleset` by nftables.service) are the elements put back from the
    snapshot. Returns a short report.
    """
    existed = nft.list_table(**kwargs) is not None
    with open(main) as handle:
        nft.apply_ruleset(handle.read(), **kwargs)
    restored = 0
    if not existed and os.path.exists(snapshot):
        with open(snapshot) as handle:
            saved = {k: v for k, v in json.load(handle).items() if k not in STATIC_SETS}
        commands = nft.restore_commands(saved, nft.sets_of(nft.list_table(**kwargs)))
        if commands:
            nft.apply_ruleset(commands, **kwargs)
            restored = sum(len(v["elements"]) for v in saved.values())
    save(snapshot, **kwargs)
    return "table %s; %d elements restored from %s" % ("reloaded" if existed else "created", restored, snapshot) if restored else \
        "table %s" % ("reloaded" if existed else "created")


def save(snapshot=SNAPSHOT, **kwargs):
    """Snapshot the elements of every set; a missing table leaves the last snapshot alone."""
    directory = os.path.dirname(snapshot)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    count = nft.save_sets(snapshot, **kwargs)
    return "no table: snapshot left as it was" if count is None else "saved %d sets to %s" % (count, snapshot)
