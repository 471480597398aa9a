"""The logic around nft; the real nft is exercised in the Molecule scenarios."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import nft

LISTING = {"nftables": [
    {"metainfo": {"json_schema_version": 1}},
    {"table": {"family": "inet", "name": "jellyfin_hardening"}},
    {"set": {"family": "inet", "table": "jellyfin_hardening", "name": "block_v4", "type": "ipv4_addr", "flags": ["interval"],
             "elem": [{"prefix": {"addr": "203.0.113.0", "len": 24}}, "198.51.100.7", {"range": ["192.0.2.1", "192.0.2.9"]}]}},
    {"set": {"family": "inet", "table": "jellyfin_hardening", "name": "ban_v4", "type": "ipv4_addr",
             "elem": [{"elem": {"val": "192.0.2.50", "timeout": 600, "expires": 300}}]}},
    {"set": {"family": "inet", "table": "jellyfin_hardening", "name": "empty_v6", "type": "ipv6_addr"}},
    {"chain": {"family": "inet", "table": "jellyfin_hardening", "name": "prerouting"}},
]}


def test_sets_of_reads_every_element_form():
    sets = nft.sets_of(LISTING["nftables"])
    assert sets == {
        "block_v4": {"type": "ipv4_addr", "elements": ["203.0.113.0/24", "198.51.100.7", "192.0.2.1-192.0.2.9"]},
        "ban_v4": {"type": "ipv4_addr", "elements": ["192.0.2.50"]},
        "empty_v6": {"type": "ipv6_addr", "elements": []},
    }


def test_restore_commands_skip_sets_that_are_gone_or_changed_type():
    snapshot = nft.sets_of(LISTING["nftables"])
    now = {"block_v4": {"type": "ipv4_addr", "elements": []}, "ban_v4": {"type": "ipv6_addr", "elements": []}}
    assert nft.restore_commands(snapshot, now) == \
        "add element inet jellyfin_hardening block_v4 { 203.0.113.0/24, 198.51.100.7, 192.0.2.1-192.0.2.9 }\n"


def test_elements_command_is_empty_for_no_elements():
    assert nft.elements_command("x", []) == ""


def test_run_nft_reports_missing_binary_and_failure():
    with pytest.raises(nft.NftError, match="not installed"):
        nft.run_nft(["list", "ruleset"], nft="/nonexistent/nft")
    with pytest.raises(nft.NftError, match=r"exit 3.*boom"):
        nft.run_nft(["-c", "echo boom >&2; exit 3"], nft="/bin/sh")
