"""When load() refills sets from the snapshot, and when it must not (the real kernel runs in Molecule)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import firewall_state, ipt, nft

BASE = {"backend": "nftables", "mgmt_v4": ["192.0.2.1"], "mgmt_v6": [], "mgmt_ports": [22], "jellyfin_ports": [8096]}
LAYER = {"sets": [{"name": "block"}], "rules": [{"stage": "blocklist", "set": "block"}]}
SNAPSHOT = {"block_v4": {"type": "ipv4_addr", "elements": ["203.0.113.0/24"]},
            "mgmt_v4": {"type": "ipv4_addr", "elements": ["192.0.2.9"]},
            "jfh_block_v4": {"type": "hash:net inet", "elements": ["198.51.100.0/24"]}}
LOADED = [{"set": {"name": "block_v4", "type": "ipv4_addr"}}, {"set": {"name": "block_v6", "type": "ipv6_addr"}},
          {"set": {"name": "mgmt_v4", "type": "ipv4_addr", "elem": ["192.0.2.1"]}}]


@pytest.fixture(name="kernel")
def fixture_kernel(tmp_path, monkeypatch):
    """A fake nft kernel: whether the table exists, and every ruleset applied."""
    state = {"table": None, "applied": []}
    monkeypatch.setattr(nft, "list_table", lambda **kw: state["table"])

    def list_set(name, **kw):
        found = [o for o in state["table"] or [] if o["set"]["name"] == name]
        return found or None
    monkeypatch.setattr(nft, "list_set", list_set)
    monkeypatch.setattr(firewall_state.shutil, "which", lambda name: "/usr/sbin/" + name if name == "nft" else None)

    def apply(text, **kw):
        state["applied"].append(text)
        state["table"] = LOADED
    monkeypatch.setattr(nft, "apply_ruleset", apply)
    (tmp_path / "layers.d").mkdir()
    (tmp_path / "firewall.json").write_text(json.dumps(BASE))
    (tmp_path / "layers.d" / "20-block.json").write_text(json.dumps(LAYER))
    (tmp_path / "sets.json").write_text(json.dumps(SNAPSHOT))
    state["paths"] = dict(conf_dir=str(tmp_path), snapshot=str(tmp_path / "sets.json"))
    return state


def test_wiped_table_is_refilled_but_static_sets_are_not(kernel):
    report = firewall_state.load(**kernel["paths"])
    assert len(kernel["applied"]) == 2
    assert kernel["applied"][1] == "add element inet jellyfin_hardening block_v4 { 203.0.113.0/24 }\n"
    assert "1 elements restored" in report


def test_reload_of_a_live_table_never_resurrects_old_elements(kernel):
    kernel["table"] = LOADED
    firewall_state.load(**kernel["paths"])
    assert len(kernel["applied"]) == 1 and "add element inet jellyfin_hardening block_v4" not in kernel["applied"][0]


def test_failed_check_stops_before_any_restore(kernel, monkeypatch):
    def refuse(text, **kw):
        raise nft.NftError("nft -c -f - failed (exit 1): syntax error")
    monkeypatch.setattr(nft, "apply_ruleset", refuse)
    with pytest.raises(nft.NftError, match="syntax error"):
        firewall_state.load(**kernel["paths"])


def test_snapshot_is_0600_and_never_replaced_by_nothing(kernel):
    path = kernel["paths"]["snapshot"]
    conf_dir = kernel["paths"]["conf_dir"]
    assert firewall_state.save(path, conf_dir=conf_dir).startswith("no set to snapshot in the kernel")
    assert json.loads(open(path).read()) == SNAPSHOT
    kernel["table"] = LOADED
    firewall_state.save(path, conf_dir=conf_dir)
    # The base's own sets are never carried: it refills them itself.
    assert sorted(json.loads(open(path).read())) == ["block_v4", "block_v6"]
    assert oct(__import__("os").stat(path).st_mode & 0o777) == "0o600"


def test_snapshot_skips_sets_their_layer_refills_and_keeps_copies_of_missing_ones(kernel, tmp_path):
    (tmp_path / "layers.d" / "20-block.json").write_text(json.dumps(
        {"sets": [{"name": "block", "snapshot": False}, {"name": "ban"}], "rules": [{"stage": "bans", "set": "ban"}]}))
    kernel["table"] = LOADED + [{"set": {"name": "ban_v4", "type": "ipv4_addr", "elem": ["198.51.100.7"]}}]
    path = kernel["paths"]["snapshot"]
    (tmp_path / "sets.json").write_text(json.dumps({"ban_v6": {"type": "ipv6_addr", "elements": ["2001:db8::7"]}}))
    firewall_state.save(path, conf_dir=kernel["paths"]["conf_dir"])
    saved = json.loads(open(path).read())
    assert sorted(saved) == ["ban_v4", "ban_v6"]
    assert saved["ban_v4"]["elements"] == ["198.51.100.7"] and saved["ban_v6"]["elements"] == ["2001:db8::7"]


def test_ipset_restore_lines_only_for_sets_of_the_same_type():
    now = {"jfh_block_v4": {"type": "hash:net inet", "elements": []}, "jfh_other_v4": {"type": "hash:ip inet", "elements": []}}
    saved = {"jfh_block_v4": {"type": "hash:net inet", "elements": ["198.51.100.0/24"]},
             "jfh_other_v4": {"type": "hash:net inet", "elements": ["192.0.2.7/32"]}}
    assert ipt.restore_commands(saved, now) == "add jfh_block_v4 198.51.100.0/24 -exist\n"
