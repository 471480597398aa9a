# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loading the firewall model into the kernel and carrying its set elements across reboots and restarts.

Run on the host by jellyfin-hardening-firewall.service (through the CLI the firewall role installs)
and by the layer modules after they change a set, so the snapshot is always the last state in force.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import tempfile

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import firewall_model, ipt, nft

CONF_DIR = "/etc/jellyfin-hardening/firewall"
SNAPSHOT = "/var/lib/jellyfin-hardening/firewall-sets.json"
# Sets the base fills itself on every load: never restored from a snapshot.
STATIC_SETS = ("mgmt_v4", "mgmt_v6", "mgmt_ports", "jellyfin_ports", "jfh_mgmt_v4", "jfh_mgmt_v6")


def _snapshot(snapshot):
    if not os.path.exists(snapshot):
        return {}
    with open(snapshot) as handle:
        return {k: v for k, v in json.load(handle).items() if k not in STATIC_SETS}


def check(conf_dir=CONF_DIR, replace=None, **kwargs):
    """Validate the model (with a candidate file swapped in) and test its ruleset against the kernel."""
    base, layers = firewall_model.read(conf_dir, replace)
    if base["backend"] == "nftables":
        nft.check_ruleset(firewall_model.render_nft(base, layers, _nft_sets(**kwargs)), **kwargs)
    # The iptables text refers to ipsets that may not exist yet: load() tests it once they do.
    return "model of %d layers is valid for %s" % (len(layers), base["backend"])


def _nft_sets(**kwargs):
    return nft.sets_of(nft.list_table(**kwargs)) if shutil.which("nft") else {}


def load(conf_dir=CONF_DIR, snapshot=SNAPSHOT, **kwargs):
    """Check and load the model; refill sets that were missing (boot, `flush ruleset`) from the snapshot.

    Set elements that are in the kernel are never touched by a load: a reload keeps every ban and
    every block list entry. Returns a short report.
    """
    base, layers = firewall_model.read(conf_dir)
    saved = _snapshot(snapshot)
    if base["backend"] == "nftables":
        report = _load_nft(base, layers, saved, **kwargs)
        if shutil.which("iptables") and shutil.which("ipset") and ipt.remove_all(**kwargs):
            report += "; ipset backend removed"
    else:
        report = _load_ipset(base, layers, saved, **kwargs)
        if shutil.which("nft") and nft.list_table(**kwargs) is not None:
            nft.run_nft(["delete", "table", nft.TABLE_FAMILY, nft.TABLE_NAME], **kwargs)
            report += "; nftables table removed"
    save(snapshot, model=(base, layers), **kwargs)
    return report


def _load_nft(base, layers, saved, **kwargs):
    existing = _nft_sets(**kwargs)
    nft.apply_ruleset(firewall_model.render_nft(base, layers, existing), **kwargs)
    now = nft.sets_of(nft.list_table(**kwargs))
    missing = {k: v for k, v in saved.items() if k not in existing}
    commands = nft.restore_commands(missing, now)
    if commands:
        nft.apply_ruleset(commands, **kwargs)
    return _report("table " + ("reloaded" if existing else "created"), missing, now)


def _load_ipset(base, layers, saved, **kwargs):
    existing = ipt.ipset_sets(**kwargs)
    ipt.ipset_restore(firewall_model.render_ipset(base, layers, existing), **kwargs)
    now = ipt.ipset_sets(**kwargs)
    missing = {k: v for k, v in saved.items() if k not in existing}
    ipt.ipset_restore(ipt.restore_commands(missing, now), **kwargs)
    rules = {suffix: firewall_model.render_iptables(base, layers, suffix) for suffix in ipt.TOOLS}
    for suffix, text in sorted(rules.items()):
        ipt.iptables_restore(text, suffix, test=True, **kwargs)
    for suffix, text in sorted(rules.items()):
        ipt.iptables_restore(text, suffix, **kwargs)
        for parent, target in ipt.HOOKS:
            ipt.ensure_first_jump(suffix, parent, target, **kwargs)
    stale = set(now) - firewall_model.wanted_ipsets(layers)
    for name in sorted(stale):
        ipt.run(["ipset", "destroy", name], **kwargs)
    return _report("chains loaded", missing, now)


def _report(head, missing, now):
    restored = sum(len(v["elements"]) for k, v in missing.items() if k in now and now[k]["type"] == v["type"])
    return head + ("; %d elements restored from the snapshot" % restored if restored else "")


def save(snapshot=SNAPSHOT, conf_dir=CONF_DIR, model=None, **kwargs):
    """Snapshot the elements of the sets that carry across reboots; sets not in the kernel keep their last copy."""
    base, layers = model or firewall_model.read(conf_dir)
    # Set by set: fail2ban's ban action runs this on every ban, and a block list's 100,000 entries
    # (refilled from its own cache at boot) must not be listed each time.
    sets = {}
    for name in firewall_model.snapshot_sets(layers, base["backend"]):
        sets.update(ipt.ipset_sets(name, **kwargs) if base["backend"] == "ipset" else nft.sets_of(nft.list_set(name, **kwargs)))
    if not sets:
        return "no set to snapshot in the kernel: snapshot left as it was"
    previous = _snapshot(snapshot)
    for name in set(firewall_model.snapshot_sets(layers, base["backend"])) - set(sets):
        if name in previous:
            sets[name] = previous[name]
    directory = os.path.dirname(snapshot)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    # A private temporary file per writer: fail2ban's ban action saves too, possibly at the same moment.
    fd, tmp = tempfile.mkstemp(dir=directory or ".", prefix=".firewall-sets.")
    with os.fdopen(fd, "w") as handle:
        json.dump(sets, handle, indent=1, sort_keys=True)
    os.replace(tmp, snapshot)
    return "saved %d sets to %s" % (len(sets), snapshot)
