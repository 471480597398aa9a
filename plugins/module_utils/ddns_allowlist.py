# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep the DDNS allowlist (the addresses of known people's dynamic DNS names) in the firewall.

The one implementation: the module ddns_allowlist and the ddns_allowlist role's timer and cron job all
call apply(). A name that fails to resolve keeps its last known addresses for keep_unresolved_for
seconds, so a resolver outage never locks anyone out; the firewall, not the state file, says what is
in force, and only the difference is changed, address by address.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import ipaddress
import json
import os
import re
import socket
import subprocess
import tempfile
import time

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist_entries as entries
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import addresses, dns_query, firewall_model, hostlock, ipt, model_sets, nft

BACKENDS = ("nftables", "ipset", "ufw")
FAMILIES = ("v4", "v6")
RRTYPES = {"v4": "A", "v6": "AAAA"}
STATE_DIR = "/var/lib/jellyfin-hardening"
LOCK_FILE = "/run/lock/jellyfin-hardening-allowlist.lock"
LOCK_WAIT = 300
MAX_WORKERS = 128
DEFAULTS = {"hostnames": [], "static": [], "ports": [8096], "protocol": "tcp", "backend": "nftables",
            "set_name": "jellyfin_allow", "nameservers": [], "keep_unresolved_for": 86400, "state_file": None,
            "timeout": 5, "state": "present"}
LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
UFW_RULE_FILES = {"v4": "/etc/ufw/user.rules", "v6": "/etc/ufw/user6.rules"}
UFW_ANY = {"v4": "0.0.0.0/0", "v6": "::/0"}


class AllowlistError(RuntimeError):
    """Nothing in force was changed; the message says why and names the bad value."""


# ---- settings ------------------------------------------------------------------------------------

def check_hostname(name):
    text = str(name)
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    # 253 characters without the root's trailing dot.
    if len(text.rstrip(".")) > 253 or not all(LABEL.match(label) for label in labels):
        raise AllowlistError("hostname %r is not a valid DNS name (letters, digits and '-' in dot-separated labels of "
                             "at most 63 characters; internationalized names in their xn-- form)" % (name,))
    if labels[-1].isdigit():
        raise AllowlistError("hostname %r looks like an address: put addresses in static" % (name,))
    return text.rstrip(".").lower()


def parse_nameserver(text):
    """(address, port) from 'addr', 'addr:port', '[v6addr]:port' or a bare IPv6 address."""
    value = str(text).strip()
    host, port = value, "53"
    if value.startswith("["):
        host, _sep, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else (rest or "53")
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise AllowlistError("nameserver %r is not an address, address:port or [IPv6]:port" % (text,))
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AllowlistError("nameserver %r: port %r is not 1-65535" % (text, port))
    return str(address), int(port)


def _whole(value, low, high, what):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AllowlistError("%s %r must be a whole number from %d to %d" % (what, value, low, high))


def check_config(config):
    """Validate the settings (module options or the runner's config file) and fill defaults."""
    conf = dict(DEFAULTS, **{k: v for k, v in config.items() if v is not None})
    unknown = set(conf) - set(DEFAULTS)
    if unknown:
        raise AllowlistError("unknown settings: %s" % ", ".join(sorted(unknown)))
    if conf["backend"] not in BACKENDS:
        raise AllowlistError("backend %r is not one of %s" % (conf["backend"], ", ".join(BACKENDS)))
    if conf["state"] not in ("present", "absent"):
        raise AllowlistError("state %r is not present or absent" % (conf["state"],))
    if conf["protocol"] not in ("tcp", "udp"):
        raise AllowlistError("protocol %r is not tcp or udp" % (conf["protocol"],))
    if not firewall_model.SET_NAME.match(str(conf["set_name"])):
        raise AllowlistError("set_name %r: use 1-24 lowercase letters, digits or '_', starting with a letter" % (conf["set_name"],))
    for key in ("hostnames", "static", "nameservers"):
        if not isinstance(conf[key], list):
            raise AllowlistError("%s must be a list, got %r" % (key, conf[key]))
    conf["hostnames"] = sorted(set(check_hostname(name) for name in conf["hostnames"]))
    static = []
    for value in conf["static"]:
        try:
            if "-" in str(value):
                raise ValueError(value)
            static.append(entries.parse_entry(str(value).strip(), bounded=False))
        except (ValueError, OSError):
            raise AllowlistError("static entry %r is not an IPv4/IPv6 address or CIDR" % (value,))
    conf["static_cidrs"] = {f: entries.to_cidrs(entries.merge((s, e) for fam, s, e in static if fam == f), f) for f in FAMILIES}
    if conf["state"] == "present" and not conf["hostnames"] and not conf["static"]:
        raise AllowlistError("give at least one of hostnames and static")
    if not isinstance(conf["ports"], list) or not conf["ports"]:
        raise AllowlistError("ports %r: give at least one port" % (conf["ports"],))
    for port in conf["ports"]:
        _whole(port, 1, 65535, "port")
    conf["ports"] = sorted(set(conf["ports"]))
    conf["nameservers"] = [parse_nameserver(server) for server in conf["nameservers"]]
    _whole(conf["keep_unresolved_for"], 0, 10 * 365 * 86400, "keep_unresolved_for")
    _whole(conf["timeout"], 1, 60, "timeout")
    if not conf["state_file"]:
        conf["state_file"] = os.path.join(STATE_DIR, "%s.json" % conf["set_name"])
    if not os.path.isabs(conf["state_file"]):
        raise AllowlistError("state_file %r must be an absolute path" % (conf["state_file"],))
    return conf


# ---- resolving -----------------------------------------------------------------------------------

def _system(name, family, timeout):
    """The system resolver (getaddrinfo: /etc/hosts, caches, resolv.conf); NODATA is an empty answer."""
    del timeout  # resolv.conf's own timeout and attempts bound getaddrinfo.
    af = socket.AF_INET if family == "v4" else socket.AF_INET6
    try:
        infos = socket.getaddrinfo(name, None, af, socket.SOCK_STREAM)
    except socket.gaierror as err:
        if err.errno == getattr(socket, "EAI_NODATA", None):
            return []
        raise dns_query.DnsFailure("%s type %s (system resolver): %s" % (name, RRTYPES[family], err.strerror or err))
    return sorted(set(info[4][0].split("%")[0] for info in infos))


def _direct(nameservers):
    def ask(name, family, timeout):
        failures = []
        for server, port in nameservers:
            try:
                return dns_query.query(name, RRTYPES[family], server, port, timeout)
            except dns_query.DnsFailure as err:
                failures.append(str(err))
        raise dns_query.DnsFailure("; ".join(failures))
    return ask


def resolve_all(hostnames, nameservers=(), timeout=5, lookup=None):
    """All names, A and AAAA, concurrently: ({name: {'v4': [addr] or None on failure, 'v6': ...}}, [errors])."""
    lookup = lookup or (_direct(nameservers) if nameservers else _system)
    questions = [(name, family) for name in hostnames for family in FAMILIES]
    answers = {name: {} for name in hostnames}
    errors = []

    def one(question):
        name, family = question
        try:
            return question, lookup(name, family, timeout), None
        except dns_query.DnsFailure as err:
            return question, None, str(err)

    if questions:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(questions))) as pool:
            for (name, family), found, error in pool.map(one, questions):
                answers[name][family] = found
                if error:
                    errors.append(error)
    return answers, errors


# ---- the decision (pure: unit- and property-tested) ------------------------------------------------

def decide(hostnames, remembered, answers, now, keep_for):
    """What each name allows now, from this run's answers and the state file's memory.

    remembered/result: {name: {family: {'addresses': [...], 'at': epoch of the answer}}}. An answered
    family takes the answer (even an empty one); a failed family keeps its last answer while it is
    younger than keep_for. A name that fails with no memory at all (a lost state file, a new name during
    an outage) is marked {'unknown_since': epoch}: what it allowed before is not known, so while that
    mark is younger than keep_for no address leaves the firewall (`hold`).
    Returns (memory, kept {name: [addr]}, unresolved [name], hold [name]).
    """
    memory, kept, unresolved, hold = {}, {}, [], []
    for name in hostnames:
        old_entry = remembered.get(name)
        entry, failed = {}, 0
        for family in FAMILIES:
            found = answers.get(name, {}).get(family)
            old = (old_entry or {}).get(family)
            if found is not None:
                entry[family] = {"addresses": sorted(found), "at": now}
                continue
            failed += 1
            if old and max(0, now - old["at"]) <= keep_for:
                entry[family] = old
                if old["addresses"]:
                    kept.setdefault(name, []).extend(old["addresses"])
        if failed == len(FAMILIES):
            unresolved.append(name)
            if old_entry is None or "unknown_since" in old_entry:
                since = now if old_entry is None else old_entry["unknown_since"]
                entry = {"unknown_since": since}
                if max(0, now - since) <= keep_for:
                    hold.append(name)
        memory[name] = entry
    return memory, {k: sorted(v) for k, v in kept.items()}, unresolved, hold


def _addresses(memory):
    """The memory without the answers' times: what decides whether a run changed anything."""
    return {n: {k: (v["addresses"] if k in FAMILIES else v) for k, v in e.items()} for n, e in memory.items()}


def allowed_cidrs(static_cidrs, memory):
    """{family: [cidr]}: the static networks and every remembered address, merged."""
    values = {f: list(static_cidrs.get(f, [])) for f in FAMILIES}
    for entry in memory.values():
        for family in FAMILIES:
            for address in entry.get(family, {}).get("addresses", []):
                # An IPv4-mapped AAAA answer (::ffff:a.b.c.d) is the IPv4 address it carries.
                values[entries.parse_entry(address, bounded=False)[0]].append(address)
    return {f: entries.normalize(values[f], f) if values[f] else [] for f in FAMILIES}


# ---- the state file ------------------------------------------------------------------------------

def load_state(path):
    """The remembered answers, or {} when there is no usable state file (with a warning text)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
        names = data["names"]
        for entry in names.values():
            for key, item in entry.items():
                if key == "unknown_since" and isinstance(item, (int, float)):
                    continue
                if key not in FAMILIES or not isinstance(item["at"], (int, float)) or not isinstance(item["addresses"], list):
                    raise ValueError(key)
        return names, None
    except (IOError, OSError) as err:
        if getattr(err, "errno", None) == 2:
            return {}, None
        return {}, "state file %s unreadable (%s): no name has a memory this run" % (path, err)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return {}, "state file %s is damaged (%s): no name has a memory this run" % (path, err)


def save_state(path, memory, now):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".allowlist.")
    with os.fdopen(fd, "w") as handle:
        json.dump({"version": 1, "updated": now, "names": memory}, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# ---- ufw -----------------------------------------------------------------------------------------

def _ufw(args, check=True):
    try:
        run = subprocess.run(["ufw"] + args, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        raise AllowlistError("ufw %s: %s" % (" ".join(args), err))
    if check and run.returncode != 0:
        raise AllowlistError("ufw %s failed: %s" % (" ".join(args), (run.stderr or run.stdout).strip()))
    return run.stdout


def ufw_rules(rule_files=None):
    """Every rule ufw holds, in order, from its own rule files (what `ufw show added` prints)."""
    rules = []
    for family, path in sorted((rule_files or UFW_RULE_FILES).items()):
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()
        except (IOError, OSError):
            continue
        for index, line in enumerate(lines):
            if not line.startswith("### tuple ### "):
                continue
            fields = line[len("### tuple ### "):].split()
            comment = ""
            if fields and fields[-1].startswith("comment="):
                try:
                    comment = binascii.unhexlify(fields.pop()[len("comment="):]).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    comment = "?"
            if len(fields) < 7:
                continue
            rules.append({"family": family, "index": index, "action": fields[0], "proto": fields[1], "dport": fields[2],
                          "dst": fields[3], "src": fields[5], "direction": fields[-1], "comment": comment})
    return rules


def _port_matches(dport, port):
    if dport == "any":
        return True
    for part in dport.split(","):
        low, _sep, high = part.partition(":")
        if low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def _ufw_net(text):
    # ufw's own spelling: a host as a bare address.
    return addresses.nft_elements([ipaddress.ip_network(text, strict=False)])[0]


def ufw_families(defaults="/etc/default/ufw"):
    """The families ufw filters: IPv6 only with IPV6=yes (its default)."""
    try:
        with open(defaults) as handle:
            ipv6 = not re.search(r"^IPV6=no\b", handle.read(), re.M)
    except (IOError, OSError):
        ipv6 = True
    return FAMILIES if ipv6 else ("v4",)


def ufw_plan(conf, allowed, rules, families=FAMILIES):
    """(add, delete, errors) for ufw: our allow rules (prepended), one deny per port after them (appended)."""
    # Rules of a family ufw does not filter (IPv6 off) are left alone: ufw refuses every command on them.
    ours = [r for r in rules if r["comment"] == conf["set_name"] and r["direction"] == "in" and r["family"] in families]
    want_allow = set((family, net, port) for family in families for net in allowed[family] for port in conf["ports"])
    have_allow = set()
    delete, add = [], []
    for rule in ours:
        if rule["action"] == "allow" and rule["proto"] == conf["protocol"] and rule["dport"].isdigit():
            key = (rule["family"], _ufw_net(rule["src"]), int(rule["dport"]))
            if key in want_allow and key not in have_allow:
                have_allow.add(key)
                continue
        if rule["action"] == "deny" and rule["src"] == UFW_ANY[rule["family"]] and rule["proto"] == conf["protocol"] \
                and rule["dport"].isdigit() and int(rule["dport"]) in conf["ports"]:
            later = [r for r in ours if r["family"] == rule["family"] and r["action"] == "allow" and r["index"] > rule["index"]]
            if not later:
                continue
        delete.append(rule)
    for family, net, port in sorted(want_allow - have_allow):
        add.append(("prepend", "allow", net, port))
    kept_denies = set((r["family"], int(r["dport"])) for r in ours if r not in delete and r["action"] == "deny")
    for family in families:
        for port in conf["ports"]:
            if (family, port) not in kept_denies:
                add.append(("append", "deny", UFW_ANY[family], port))
    errors = ["%s %s port %s from %s (%s)" % (r["action"], r["proto"], r["dport"], "anywhere", "IPv6" if r["family"] == "v6" else "IPv4")
              for r in rules if r["comment"] != conf["set_name"] and r["action"].split("_")[0] in ("allow", "limit")
              # 'in_eth0': allow in on an interface
              and r["direction"].split("_")[0] == "in"
              and r["src"] == UFW_ANY[r["family"]] and r["proto"] in (conf["protocol"], "any")
              and any(_port_matches(r["dport"], p) for p in conf["ports"])]
    return add, delete, errors


def _ufw_spec(action, net, port, proto):
    # An explicit 0.0.0.0/0 or ::/0 source makes a rule of one family only.
    return [action, "from", net, "to", "any", "port", str(port), "proto", proto]


def ufw_installed():
    return os.path.exists("/usr/sbin/ufw") or any(os.path.exists(os.path.join(d, "ufw")) for d in os.environ.get("PATH", "").split(":") if d)


# ---- the firewall --------------------------------------------------------------------------------

def read_firewall(conf, check_mode):
    """{family: [cidr]} our allow entries in force now; for ufw also the parsed rules."""
    if conf["backend"] == "ufw":
        rules = ufw_rules() if ufw_installed() else []
        current = {f: [] for f in FAMILIES}
        for rule in rules:
            if rule["comment"] == conf["set_name"] and rule["action"] == "allow" and rule["direction"] == "in":
                current[rule["family"]].append(rule["src"])
        return {f: entries.normalize(v, f) if v else [] for f, v in current.items()}, rules
    try:
        found = model_sets.read_sets(conf["set_name"], conf["backend"])
    except (nft.NftError, ipt.IptError) as err:
        raise AllowlistError(str(err))
    missing = [f for f in FAMILIES if found[f] is None]
    if missing and conf["state"] == "present" and not check_mode:
        raise AllowlistError("the %s sets %s do not exist: apply the ddns_allowlist role, which declares them in the firewall model"
                             % (conf["backend"], ", ".join(firewall_model.set_names(conf["set_name"], conf["backend"])[f] for f in missing)))
    return {f: found[f] or [] for f in FAMILIES}, None


def write_firewall(conf, wanted, plan):
    """Bring the firewall to `wanted` (ufw: carry out the (add, delete) plan); returns the ufw commands run."""
    if conf["backend"] != "ufw":
        try:
            model_sets.write_sets(conf["set_name"], conf["backend"], wanted)
        except (nft.NftError, ipt.IptError) as err:
            raise AllowlistError("updating the allowlist failed, the set in force is unchanged: %s" % err)
        return []
    add, delete = plan
    commands = [["prepend"] + _ufw_spec(action, net, port, conf["protocol"]) + ["comment", conf["set_name"]]
                for where, action, net, port in add if where == "prepend"]
    # New addresses first, then removals (an address that moves never leaves a gap), then the
    # denies at the end, behind every allow.
    commands += [["delete"] + _ufw_spec(rule["action"], rule["src"], rule["dport"], rule["proto"]) for rule in delete]
    commands += [_ufw_spec(action, net, port, conf["protocol"]) + ["comment", conf["set_name"]]
                 for where, action, net, port in add if where == "append"]
    for args in commands:
        _ufw(args)
    return ["ufw " + " ".join(args) for args in commands]


def _ufw_check(conf, wanted, rules, families, check_mode, warnings):
    """The (add, delete) plan for ufw; AllowlistError when ufw is inactive or another rule opens the ports."""
    if conf["state"] == "absent":
        return [], [r for r in rules if r["comment"] == conf["set_name"] and r["family"] in families]
    if "v6" not in families and wanted["v6"]:
        warnings.append("ufw has IPv6 off (IPV6=no in /etc/default/ufw): %s not allowed" % ", ".join(wanted["v6"]))
    add, delete, open_rules = ufw_plan(conf, wanted, rules, families)
    if open_rules:
        raise AllowlistError("ufw rules let everyone reach the allowlisted ports, so the allowlist would mean nothing: %s. "
                             "Remove them (ufw status numbered; ufw delete N) and run again" % "; ".join(open_rules))
    if ufw_installed() and not check_mode and "Status: active" not in _ufw(["status"]):
        raise AllowlistError("ufw is inactive, so its rules filter nothing: enable it after allowing SSH "
                             "(the ddns_allowlist role does with ddns_allowlist_ufw_enable: true)")
    return add, delete


# ---- the one entry point -------------------------------------------------------------------------

def _offline(name, family, timeout):
    raise dns_query.DnsFailure("%s type %s: not asked (offline run)" % (name, RRTYPES[family]))


def apply(config, check_mode=False, want_diff=False, offline=False, lock_file=LOCK_FILE, now=None, lookup=None):
    """Resolve, decide and bring the firewall to the result. Raises AllowlistError with nothing changed.

    offline: ask no DNS server; every name keeps its last answer (the boot refill).
    """
    conf = check_config(config)
    lookup = _offline if offline else lookup
    if check_mode:
        return _apply(conf, check_mode, want_diff, now, lookup)
    try:
        with hostlock.Lock(lock_file, LOCK_WAIT, what="allowlist run"):
            return _apply(conf, check_mode, want_diff, now, lookup)
    except hostlock.LockTimeout as err:
        raise AllowlistError(str(err))


def _apply(conf, check_mode, want_diff, now, lookup):
    now = int(time.time() if now is None else now)
    warnings = []
    current, rules = read_firewall(conf, check_mode)
    remembered, problem = load_state(conf["state_file"])
    if problem:
        warnings.append(problem)
    memory, kept, unresolved, errors = {}, {}, [], []
    if conf["state"] == "present":
        answers, errors = resolve_all(conf["hostnames"], conf["nameservers"], conf["timeout"], lookup)
        memory, kept, unresolved, hold = decide(conf["hostnames"], remembered, answers, now, conf["keep_unresolved_for"])
        wanted = allowed_cidrs(conf["static_cidrs"], memory)
        if hold:
            # What these names allowed before is not known: nothing leaves the firewall until they answer.
            warnings.append("%s did not resolve and %s no memory in %s: no address is removed until %s"
                            % (", ".join(hold), "has" if len(hold) == 1 else "have", conf["state_file"],
                               "it resolves" if len(hold) == 1 else "they resolve"))
            wanted = {f: entries.normalize(wanted[f] + current[f], f) if wanted[f] or current[f] else [] for f in FAMILIES}
    else:
        wanted = {f: [] for f in FAMILIES}
    plan = None
    # ufw with IPv6 off changes (and reports) IPv4 only.
    families = ufw_families() if conf["backend"] == "ufw" else FAMILIES
    if conf["backend"] == "ufw":
        plan = _ufw_check(conf, wanted, rules or [], families, check_mode, warnings)
    added = {f: sorted(set(wanted[f]) - set(current[f])) if f in families else [] for f in FAMILIES}
    removed = {f: sorted(set(current[f]) - set(wanted[f])) if f in families else [] for f in FAMILIES}
    firewall_changes = any(plan) if plan is not None else any(added[f] or removed[f] for f in FAMILIES)
    changed = firewall_changes or (conf["state"] == "present" and _addresses(remembered) != _addresses(memory))
    result = {"changed": changed, "backend": conf["backend"], "set_name": conf["set_name"],
              "allowed": sorted(wanted["v4"]) + sorted(wanted["v6"]),
              "added": added["v4"] + added["v6"], "removed": removed["v4"] + removed["v6"],
              "unresolved": unresolved, "kept": kept, "resolver_errors": errors, "warnings": warnings, "commands": []}
    if want_diff:
        result["diff"] = {"before": "".join(a + "\n" for f in FAMILIES for a in current[f]),
                          "after": "".join(a + "\n" for f in FAMILIES for a in wanted[f]),
                          "before_header": "%s (in force)" % conf["set_name"], "after_header": "%s (wanted)" % conf["set_name"]}
    if check_mode:
        return result
    if firewall_changes:
        result["commands"] = write_firewall(conf, wanted, plan)
    if conf["state"] == "absent":
        if os.path.exists(conf["state_file"]):
            os.remove(conf["state_file"])
            result["changed"] = True
    else:
        # Written on every run: the answers' times are what keep_unresolved_for counts from.
        save_state(conf["state_file"], memory, now)
    return result
