"""When load() refills sets from the snapshot, and when it must not (the real nft runs in Molecule)."""

import json

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import firewall_state, nft

SNAPSHOT = {"block_v4": {"type": "ipv4_addr", "elements": ["203.0.113.0/24"]},
            "mgmt_v4": {"type": "ipv4_addr", "elements": ["192.0.2.1"]}}
LOADED = [{"set": {"name": "block_v4", "type": "ipv4_addr"}}, {"set": {"name": "mgmt_v4", "type": "ipv4_addr", "elem": ["192.0.2.9"]}}]


@pytest.fixture(name="kernel")
def fixture_kernel(tmp_path, monkeypatch):
    """A fake kernel: whether the table exists, and every ruleset applied."""
    state = {"table": None, "applied": []}
    monkeypatch.setattr(nft, "list_table", lambda **kw: state["table"])
    monkeypatch.setattr(nft, "save_sets", lambda path, **kw: 2)

    def apply(text, **kw):
        state["applied"].append(text)
        state["table"] = LOADED
    monkeypatch.setattr(nft, "apply_ruleset", apply)
    (tmp_path / "main.nft").write_text("add table inet jellyfin_hardening\n")
    (tmp_path / "sets.json").write_text(json.dumps(SNAPSHOT))
    state["paths"] = dict(main=str(tmp_path / "main.nft"), snapshot=str(tmp_path / "sets.json"))
    return state


def test_wiped_table_is_refilled_but_static_sets_are_not(kernel):
    report = firewall_state.load(**kernel["paths"])
    assert kernel["applied"] == ["add table inet jellyfin_hardening\n",
                                 "add element inet jellyfin_hardening block_v4 { 203.0.113.0/24 }\n"]
    assert "1 elements restored" in report


def test_reload_of_a_live_table_never_resurrects_old_elements(kernel):
    kernel["table"] = LOADED
    firewall_state.load(**kernel["paths"])
    assert kernel["applied"] == ["add table inet jellyfin_hardening\n"]


def test_failed_check_stops_before_any_restore(kernel, monkeypatch):
    def refuse(text, **kw):
        raise nft.NftError("nft -c -f - failed (exit 1): syntax error")
    monkeypatch.setattr(nft, "apply_ruleset", refuse)
    with pytest.raises(nft.NftError, match="syntax error"):
        firewall_state.load(**kernel["paths"])
