# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall model as data, and its rendering for each backend.

The firewall role writes the base (firewall.json) and every layer role a drop-in (layers.d/NAME.json);
this module turns them into one nftables transaction or into ipset and iptables-restore input. Layers
describe what they want (sets, and a rule per stage); they never write backend syntax, so every layer
works on both backends and the order of docs/firewall.md holds on both.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import addresses

BACKENDS = ("nftables", "ipset")
TABLE = "inet jellyfin_hardening"
# Stages in the order the packet meets them, with the verdict a layer's rule in them gives.
STAGES = {"blocklist": "drop", "bans": "drop", "allow": "accept", "deny": "drop"}
NFT_CHAINS = {"blocklist": "blocklist", "bans": "bans", "allow": "restrict_allow", "deny": "restrict_deny"}
IPT_CHAINS = {"blocklist": "JFH-BLOCKLIST", "bans": "JFH-BANS", "allow": "JFH-ALLOW", "deny": "JFH-DENY"}
IPSET_PREFIX = "jfh_"
# ipset names are at most 31 characters: prefix + name + _v4.
SET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,23}$")
LAYER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BASE_SETS = ("mgmt",)
FAMILIES = ({"suffix": "v4", "match": "ip", "nft_type": "ipv4_addr", "ipset_family": "inet"},
            {"suffix": "v6", "match": "ip6", "nft_type": "ipv6_addr", "ipset_family": "inet6"})


class ModelError(ValueError):
    """A base or layer file that does not describe a valid model; the message names the bad value."""


def set_names(name, backend):
    """Kernel names of a model set: {'v4': ..., 'v6': ...}."""
    prefix = IPSET_PREFIX if backend == "ipset" else ""
    return {"v4": "%s%s_v4" % (prefix, name), "v6": "%s%s_v6" % (prefix, name)}


def _ports(value, what):
    if not isinstance(value, list) or not value:
        raise ModelError("%s needs at least one port, got %r" % (what, value))
    for port in value:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ModelError("%s: %r is not a port 1-65535" % (what, port))
    return sorted(set(value))


def check_base(base):
    """Validate firewall.json's content and return it normalized."""
    if not isinstance(base, dict):
        raise ModelError("the base must be a mapping, got %r" % (base,))
    if base.get("backend") not in BACKENDS:
        raise ModelError("backend %r is not one of %s" % (base.get("backend"), ", ".join(BACKENDS)))
    try:
        mgmt = addresses.parse_networks(base.get("mgmt_v4", []) + base.get("mgmt_v6", []), "management source")
    except addresses.AddressError as err:
        raise ModelError(str(err))
    v4, v6 = addresses.split_families(mgmt)
    if not v4 and not v6:
        raise ModelError("no management source: a ruleset without a management path is never applied")
    return {"backend": base["backend"], "mgmt_v4": [str(n) for n in v4], "mgmt_v6": [str(n) for n in v6],
            "mgmt_ports": _ports(base.get("mgmt_ports"), "mgmt_ports"),
            "jellyfin_ports": _ports(base.get("jellyfin_ports"), "jellyfin_ports")}


def check_layer(name, layer):
    """Validate one layer drop-in and return it normalized."""
    if not LAYER_NAME.match(name or ""):
        raise ModelError("layer name %r: use letters, digits, '.', '_' and '-'" % (name,))
    if not isinstance(layer, dict) or set(layer) - {"sets", "rules"}:
        raise ModelError("layer %s: a mapping with 'sets' and 'rules' only, got %r" % (name, layer))
    sets = []
    for item in layer.get("sets", []):
        if not isinstance(item, dict) or not SET_NAME.match(str(item.get("name", ""))) or item["name"] in BASE_SETS:
            raise ModelError("layer %s: set %r needs a name of 1-24 lowercase letters, digits or '_'" % (name, item))
        # snapshot: false for sets their layer refills itself at boot (block lists, from their cache):
        # the snapshot fail2ban's ban action writes stays small.
        entry = {"name": item["name"], "interval": bool(item.get("interval", True)),
                 "snapshot": bool(item.get("snapshot", True))}
        if "elements" in item:
            entry.update(_static_elements(name, item))
        sets.append(entry)
    declared = [s["name"] for s in sets]
    if len(set(declared)) != len(declared):
        raise ModelError("layer %s declares a set twice: %s" % (name, declared))
    rules = []
    for rule in layer.get("rules", []):
        if not isinstance(rule, dict) or rule.get("stage") not in STAGES:
            raise ModelError("layer %s: rule %r needs a stage, one of %s" % (name, rule, ", ".join(STAGES)))
        if rule.get("set") is not None and rule["set"] not in declared:
            raise ModelError("layer %s: rule %r refers to a set the layer does not declare" % (name, rule))
        if rule.get("set") is None and rule["stage"] != "deny":
            raise ModelError("layer %s: only a deny rule may match every source, got %r" % (name, rule))
        if rule.get("ports", "jellyfin") not in ("jellyfin", "all"):
            raise ModelError("layer %s: rule %r: ports must be 'jellyfin' or 'all'" % (name, rule))
        if rule["stage"] in ("allow", "deny") and rule.get("ports", "jellyfin") != "jellyfin":
            raise ModelError("layer %s: rule %r: the restriction stages cover the Jellyfin ports only" % (name, rule))
        rules.append({"stage": rule["stage"], "set": rule.get("set"), "ports": rule.get("ports", "jellyfin")})
    return {"sets": sets, "rules": rules}


def _static_elements(layer, item):
    """A set whose content is part of the model (the VPN and LAN subnets): rewritten on every load, never snapshotted."""
    if not isinstance(item["elements"], list):
        raise ModelError("layer %s: set %s: elements must be a list of addresses or CIDRs, got %r" % (layer, item["name"], item["elements"]))
    try:
        v4, v6 = addresses.split_families(addresses.parse_networks(item["elements"], "layer %s set %s element" % (layer, item["name"])))
    except addresses.AddressError as err:
        raise ModelError(str(err))
    return {"interval": True, "snapshot": False, "elements": {"v4": [str(n) for n in v4], "v6": [str(n) for n in v6]}}


def check_layers(layers):
    """Validate {name: layer}; a set name belongs to one layer only."""
    checked, owner = {}, {}
    for name in sorted(layers):
        checked[name] = check_layer(name, layers[name])
        for item in checked[name]["sets"]:
            if item["name"] in owner:
                raise ModelError("set %s is declared by both %s and %s" % (item["name"], owner[item["name"]], name))
            owner[item["name"]] = name
    return checked


def read(conf_dir, replace=None):
    """Read and check firewall.json and layers.d/*.json; `replace` {name or 'base': path} swaps in a candidate."""
    replace = replace or {}
    with open(replace.get("base", os.path.join(conf_dir, "firewall.json"))) as handle:
        base = check_base(json.load(handle))
    layers_dir = os.path.join(conf_dir, "layers.d")
    paths = {}
    if os.path.isdir(layers_dir):
        paths = {f[:-5]: os.path.join(layers_dir, f) for f in os.listdir(layers_dir) if f.endswith(".json")}
    paths.update((k, v) for k, v in replace.items() if k != "base" and v is not None)
    for name in [k for k, v in replace.items() if k != "base" and v is None]:
        paths.pop(name, None)
    layers = {}
    for name, path in paths.items():
        try:
            with open(path) as handle:
                layers[name] = json.load(handle)
        except ValueError as err:
            raise ModelError("layer %s (%s) is not JSON: %s" % (name, path, err))
    return base, check_layers(layers)


def declared_sets(layers):
    """Every layer set's model name, with whether it is an interval set."""
    return {s["name"]: s for layer in layers.values() for s in layer["sets"]}


def _ordered_rules(layers):
    return [rule for name in sorted(layers) for rule in layers[name]["rules"]]


# ---- nftables ------------------------------------------------------------------------------------

def render_nft(base, layers, existing_sets=()):
    """One nft transaction: the table, base chains and every layer; stale layer sets are deleted."""
    lines = ["add table %s" % TABLE]
    static = {"mgmt_v4": "ipv4_addr", "mgmt_v6": "ipv6_addr"}
    for name, kind in sorted(static.items()):
        lines.append("add set %s %s { type %s; flags interval; auto-merge; }" % (TABLE, name, kind))
        lines.append("flush set %s %s" % (TABLE, name))
        if base[name]:
            lines.append("add element %s %s { %s }" % (TABLE, name, ", ".join(base[name])))
    for name in ("mgmt_ports", "jellyfin_ports"):
        lines.append("add set %s %s { type inet_service; }" % (TABLE, name))
        lines.append("flush set %s %s" % (TABLE, name))
        lines.append("add element %s %s { %s }" % (TABLE, name, ", ".join(str(p) for p in base[name])))
    wanted = set()
    for item in declared_sets(layers).values():
        for fam in FAMILIES:
            set_name = "%s_%s" % (item["name"], fam["suffix"])
            wanted.add(set_name)
            flags = " flags interval; auto-merge;" if item["interval"] else ""
            lines.append("add set %s %s { type %s;%s }" % (TABLE, set_name, fam["nft_type"], flags))
            if "elements" in item:
                lines.append("flush set %s %s" % (TABLE, set_name))
                if item["elements"][fam["suffix"]]:
                    lines.append("add element %s %s { %s }" % (TABLE, set_name, ", ".join(item["elements"][fam["suffix"]])))
    # Priority -150: after conntrack (-200), before Docker's DNAT (-100); see docs/firewall.md.
    lines.append("add chain %s prerouting { type filter hook prerouting priority -150; policy accept; }" % TABLE)
    chains = ["prerouting"] + [NFT_CHAINS[s] for s in STAGES]
    lines += ["add chain %s %s" % (TABLE, c) for c in chains[1:]]
    lines += ["flush chain %s %s" % (TABLE, c) for c in chains]
    pre = "add rule %s prerouting " % TABLE
    lines += [
        pre + 'iif "lo" accept',
        pre + 'fib daddr type != local return comment "transit: not for this host"',
        pre + 'ip saddr @mgmt_v4 tcp dport @mgmt_ports accept comment "management path"',
        pre + 'ip6 saddr @mgmt_v6 tcp dport @mgmt_ports accept comment "management path"',
        pre + "jump blocklist",
        pre + "jump bans",
        pre + "ct state established,related accept",
        pre + "jump restrict_allow",
        pre + "jump restrict_deny",
    ]
    for rule in _ordered_rules(layers):
        ports = " tcp dport @jellyfin_ports" if rule["ports"] == "jellyfin" else ""
        verdict = STAGES[rule["stage"]]
        chain = NFT_CHAINS[rule["stage"]]
        if rule["set"] is None:
            lines.append("add rule %s %s%s %s" % (TABLE, chain, ports, verdict))
            continue
        for fam in FAMILIES:
            lines.append("add rule %s %s %s saddr @%s_%s%s %s" % (TABLE, chain, fam["match"], rule["set"], fam["suffix"], ports, verdict))
    reserved = {"mgmt_v4", "mgmt_v6", "mgmt_ports", "jellyfin_ports"}
    lines += ["delete set %s %s" % (TABLE, s) for s in sorted(set(existing_sets) - wanted - reserved)]
    return "\n".join(lines) + "\n"


# ---- ipset and iptables --------------------------------------------------------------------------

def render_ipset(base, layers, existing=()):
    """`ipset restore` input: missing sets created, the management sets and static layer sets refilled.

    Any other set that exists is left alone: a block list swaps in sets sized to fit, and `create -exist`
    refuses a set whose size differs.
    """
    lines = []
    for fam in FAMILIES:
        name = set_names("mgmt", "ipset")[fam["suffix"]]
        lines.append("create %s hash:net family %s -exist" % (name, fam["ipset_family"]))
        lines.append("flush %s" % name)
        lines += ["add %s %s" % (name, net) for net in base["mgmt_" + fam["suffix"]]]
    for item in declared_sets(layers).values():
        for fam in FAMILIES:
            name = set_names(item["name"], "ipset")[fam["suffix"]]
            if name not in existing:
                lines.append("create %s hash:net family %s" % (name, fam["ipset_family"]))
            if "elements" in item:
                lines.append("flush %s" % name)
                lines += ["add %s %s" % (name, net) for net in item["elements"][fam["suffix"]]]
    return "\n".join(lines) + "\n"


def snapshot_sets(layers, backend):
    """Kernel names of the sets the firewall snapshot carries across reboots."""
    return sorted(n for s in declared_sets(layers).values() if s["snapshot"] for n in set_names(s["name"], backend).values())


def wanted_ipsets(layers):
    names = set(set_names("mgmt", "ipset").values())
    for item in declared_sets(layers).values():
        names.update(set_names(item["name"], "ipset").values())
    return names


def render_iptables(base, layers, suffix):
    """`iptables-restore --noflush` input for one family ('v4' or 'v6'): the collection's own chains only.

    INPUT and DOCKER-USER jump to them (see firewall_state). Both paths match the port the packet had
    when it arrived (conntrack's original destination port), so a Docker-published port is checked as
    the host port it was published on. Our chains only RETURN or DROP: an ACCEPT would end INPUT for
    UFW and every other rule there, which nftables' per-table accept does not.
    """
    mgmt = set_names("mgmt", "ipset")[suffix]

    def port_rules(chain, match, ports, target):
        if ports == "all":
            return ["-A %s %s-j %s" % (chain, match, target)]
        return ["-A %s -p tcp %s-m conntrack --ctorigdstport %d -j %s" % (chain, match, p, target)
                for p in base["jellyfin_ports"]]

    lines = ["*filter"]
    lines += [":%s - [0:0]" % c for c in ("JFH-INPUT", "JFH-FORWARD", "JFH-CHECK") + tuple(IPT_CHAINS.values())]
    lines += [
        "-A JFH-INPUT -i lo -j RETURN",
        "-A JFH-INPUT -m addrtype ! --dst-type LOCAL -j RETURN",
        "-A JFH-INPUT -j JFH-CHECK",
        # DOCKER-USER sees every forwarded packet: check only connections DNAT-ed to a published port,
        # in the client's direction (replies from the container are not addressed to this host).
        "-A JFH-FORWARD -m conntrack ! --ctstate DNAT -j RETURN",
        "-A JFH-FORWARD -m conntrack --ctdir REPLY -j RETURN",
        "-A JFH-FORWARD -j JFH-CHECK",
    ]
    lines += ["-A JFH-CHECK -p tcp -m set --match-set %s src -m conntrack --ctorigdstport %d -j RETURN" % (mgmt, p)
              for p in base["mgmt_ports"]]
    lines += [
        "-A JFH-CHECK -j JFH-BLOCKLIST",
        "-A JFH-CHECK -j JFH-BANS",
        "-A JFH-CHECK -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        # goto, not jump: a RETURN in JFH-ALLOW then leaves JFH-CHECK too, like nft's accept.
        "-A JFH-CHECK -g JFH-ALLOW",
    ]
    allow, deny = [], []
    for rule in _ordered_rules(layers):
        match = "-m set --match-set %s src " % set_names(rule["set"], "ipset")[suffix] if rule["set"] else ""
        chain = IPT_CHAINS[rule["stage"]]
        target = "RETURN" if rule["stage"] == "allow" else "DROP"
        (allow if rule["stage"] == "allow" else deny if rule["stage"] == "deny" else lines).extend(
            port_rules(chain, match, rule["ports"], target))
    lines += allow + ["-A JFH-ALLOW -g JFH-DENY"] + deny + ["COMMIT"]
    return "\n".join(lines) + "\n"
