# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nft command runner and the collection's table, shared by modules and host-side jobs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import subprocess

TABLE_FAMILY = "inet"
TABLE_NAME = "jellyfin_hardening"
DEFAULT_TIMEOUT = 30


class NftError(RuntimeError):
    """nft failed or is missing; the message carries the command and nft's own words."""


def run_nft(args, stdin=None, timeout=DEFAULT_TIMEOUT, nft="nft"):
    """Run nft with a timeout and return its stdout; raise NftError with nft's message."""
    cmd = [nft] + list(args)
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise NftError("nft is not installed (looked for %r): install the nftables package" % nft)
    except subprocess.TimeoutExpired:
        raise NftError("%s did not finish within %s s" % (" ".join(cmd), timeout))
    if proc.returncode != 0:
        raise NftError("%s failed (exit %d): %s" % (" ".join(cmd), proc.returncode, (proc.stderr or proc.stdout).strip()))
    return proc.stdout


def check_ruleset(text, **kwargs):
    """Dry-run a ruleset against the kernel's current state (nft -c); raises NftError when it would fail."""
    run_nft(["-c", "-f", "-"], stdin=text, **kwargs)


def apply_ruleset(text, **kwargs):
    """Load a ruleset in one transaction: all of it applies, or none of it."""
    check_ruleset(text, **kwargs)
    run_nft(["-f", "-"], stdin=text, **kwargs)


def list_table(family=TABLE_FAMILY, table=TABLE_NAME, what=None, **kwargs):
    """The table (or `what`) as nft's JSON objects, or None when the table does not exist."""
    try:
        out = run_nft(["-j", "list"] + (what or ["table", family, table]), **kwargs)
    except NftError as err:
        if "No such file or directory" in str(err):
            return None
        raise
    return json.loads(out).get("nftables", [])


def list_set(name, family=TABLE_FAMILY, table=TABLE_NAME, **kwargs):
    """One set of the table as nft's JSON objects, or None when it does not exist."""
    return list_table(family, table, what=["set", family, table, name], **kwargs)


def _element_text(element):
    """One element of nft's JSON set listing as nft syntax."""
    if isinstance(element, dict):
        if "elem" in element:
            return _element_text(element["elem"]["val"])
        if "prefix" in element:
            return "%s/%d" % (element["prefix"]["addr"], element["prefix"]["len"])
        if "range" in element:
            return "%s-%s" % tuple(element["range"])
        raise NftError("unexpected set element in nft output: %r" % (element,))
    return str(element)


def sets_of(objects):
    """{set name: {"type": type, "elements": [element, ...]}} from list_table() output."""
    result = {}
    for obj in objects or []:
        nft_set = obj.get("set")
        if nft_set:
            result[nft_set["name"]] = {
                "type": nft_set["type"],
                "elements": [_element_text(e) for e in nft_set.get("elem", [])],
            }
    return result


def elements_command(set_name, elements, verb="add", family=TABLE_FAMILY, table=TABLE_NAME):
    """An nft command that adds (or deletes) elements; empty string when there are none."""
    if not elements:
        return ""
    return "%s element %s %s %s { %s }\n" % (verb, family, table, set_name, ", ".join(elements))


def restore_commands(snapshot, existing_sets, family=TABLE_FAMILY, table=TABLE_NAME):
    """nft commands that put a snapshot's elements back into the sets that exist now.

    Sets the current ruleset no longer declares are skipped: their layer was removed.
    """
    return "".join(
        elements_command(name, saved["elements"], family=family, table=table)
        for name, saved in sorted(snapshot.items())
        if name in existing_sets and existing_sets[name]["type"] == saved["type"]
    )
