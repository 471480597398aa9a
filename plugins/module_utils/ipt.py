# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ipset and iptables runners for the ipset backend, shared by modules and host-side jobs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess

DEFAULT_TIMEOUT = 30
CHAIN_PREFIX = "JFH-"
SET_PREFIX = "jfh_"
# Where the collection's chains hook in: (parent chain, our chain). DOCKER-USER is Docker's documented
# place for rules that must run before its own; dockerd keeps its content and only adds its jump.
HOOKS = (("INPUT", "JFH-INPUT"), ("DOCKER-USER", "JFH-FORWARD"))
TOOLS = {"v4": ("iptables", "iptables-restore"), "v6": ("ip6tables", "ip6tables-restore")}


class IptError(RuntimeError):
    """ipset or iptables failed or is missing; the message carries the command and the tool's own words."""


def run(cmd, stdin=None, timeout=DEFAULT_TIMEOUT, ok_codes=(0,)):
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise IptError("%s is not installed: install the %s package" % (cmd[0], "ipset" if cmd[0] == "ipset" else "iptables"))
    except subprocess.TimeoutExpired:
        raise IptError("%s did not finish within %s s" % (" ".join(cmd), timeout))
    if proc.returncode not in ok_codes:
        raise IptError("%s failed (exit %d): %s" % (" ".join(cmd), proc.returncode, (proc.stderr or proc.stdout).strip()))
    return proc


def ipset_sets(name=None, **kwargs):
    """{name: {"type": "hash:net inet", "elements": [...]}} for the collection's ipsets, or for one (from `ipset save`)."""
    sets = {}
    proc = run(["ipset", "save"] + ([name] if name else []), ok_codes=(0, 1) if name else (0,), **kwargs)
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        words = line.split()
        if len(words) < 3 or not words[1].startswith(SET_PREFIX):
            continue
        if words[0] == "create":
            family = words[words.index("family") + 1] if "family" in words else "inet"
            sets[words[1]] = {"type": "%s %s" % (words[2], family), "elements": []}
        elif words[0] == "add" and words[1] in sets:
            sets[words[1]]["elements"].append(words[2])
    return sets


def ipset_restore(text, **kwargs):
    if text.strip():
        run(["ipset", "restore"], stdin=text, **kwargs)


def restore_commands(snapshot, existing_sets):
    """`ipset restore` lines that put a snapshot's elements back into sets that exist with the same type."""
    return "".join(
        "add %s %s -exist\n" % (name, element)
        for name, saved in sorted(snapshot.items())
        if name in existing_sets and existing_sets[name]["type"] == saved["type"]
        for element in saved["elements"]
    )


def iptables_restore(text, suffix, test=False, **kwargs):
    """Replace the content of the chains `text` declares, in one commit for the table; others are untouched."""
    cmd = [TOOLS[suffix][1], "-w", "10", "--noflush"] + (["--test"] if test else [])
    run(cmd, stdin=text, **kwargs)


def chain_rules(suffix, chain, **kwargs):
    """The -A lines of a chain, or None when the chain does not exist."""
    proc = run([TOOLS[suffix][0], "-w", "10", "-S", chain], ok_codes=(0, 1), **kwargs)
    if proc.returncode != 0:
        return None
    return [line for line in proc.stdout.splitlines() if line.startswith("-A ")]


def ensure_first_jump(suffix, parent, target, **kwargs):
    """Make `-j target` the first rule of `parent` (created when missing); True when something changed."""
    tool = TOOLS[suffix][0]
    rules = chain_rules(suffix, parent, **kwargs)
    jump = "-A %s -j %s" % (parent, target)
    if rules and rules[0] == jump and rules.count(jump) == 1:
        return False
    if rules is None:
        run([tool, "-w", "10", "-N", parent], **kwargs)
        rules = []
    for _rule in range(rules.count(jump)):
        run([tool, "-w", "10", "-D", parent, "-j", target], **kwargs)
    run([tool, "-w", "10", "-I", parent, "1", "-j", target], **kwargs)
    return True


def remove_all(**kwargs):
    """Take the ipset backend out of the kernel (when the host moves to nftables); True when it was there."""
    found = False
    for suffix in TOOLS:
        tool = TOOLS[suffix][0]
        for parent, target in HOOKS:
            rules = chain_rules(suffix, parent, **kwargs) or []
            for _rule in range(rules.count("-A %s -j %s" % (parent, target))):
                run([tool, "-w", "10", "-D", parent, "-j", target], **kwargs)
                found = True
        proc = run([tool, "-w", "10", "-S"], **kwargs)
        ours = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("-N " + CHAIN_PREFIX)]
        for chain in ours:
            run([tool, "-w", "10", "-F", chain], **kwargs)
        for chain in ours:
            run([tool, "-w", "10", "-X", chain], **kwargs)
        found = found or bool(ours)
    for name in ipset_sets(**kwargs):
        run(["ipset", "destroy", name], **kwargs)
        found = True
    return found
