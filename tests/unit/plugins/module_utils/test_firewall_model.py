"""The model's validation and its rendering for both backends (the kernel runs them in Molecule)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import firewall_model as fm

BASE = {"backend": "nftables", "mgmt_v4": ["192.0.2.1"], "mgmt_v6": [], "mgmt_ports": [22], "jellyfin_ports": [8097, 8096]}
LAYERS = {
    "20-blocklist": {"sets": [{"name": "bl"}], "rules": [{"stage": "blocklist", "set": "bl", "ports": "all"}]},
    "30-bans": {"sets": [{"name": "f2b", "interval": False}], "rules": [{"stage": "bans", "set": "f2b"}]},
    "40-allow": {"sets": [{"name": "allow"}], "rules": [{"stage": "allow", "set": "allow"}, {"stage": "deny"}]},
}


def model(base=None, layers=None):
    return fm.check_base(dict(BASE, **(base or {}))), fm.check_layers(LAYERS if layers is None else layers)


def test_nft_order_and_rules():
    text = fm.render_nft(*model())
    lines = text.splitlines()
    pre = [line.split(" prerouting ", 1)[1] for line in lines if line.startswith("add rule inet jellyfin_hardening prerouting ")]
    assert [p.split(" comment")[0] for p in pre] == [
        'iif "lo" accept', "fib daddr type != local return", "ip saddr @mgmt_v4 tcp dport @mgmt_ports accept",
        "ip6 saddr @mgmt_v6 tcp dport @mgmt_ports accept", "jump blocklist", "jump bans",
        "ct state established,related accept", "jump restrict_allow", "jump restrict_deny"]
    assert "add rule inet jellyfin_hardening blocklist ip6 saddr @bl_v6 drop" in lines
    assert "add rule inet jellyfin_hardening bans ip saddr @f2b_v4 tcp dport @jellyfin_ports drop" in lines
    assert "add set inet jellyfin_hardening f2b_v6 { type ipv6_addr; }" in lines
    assert "add rule inet jellyfin_hardening restrict_deny tcp dport @jellyfin_ports drop" in lines
    assert "add element inet jellyfin_hardening jellyfin_ports { 8096, 8097 }" in lines


def test_nft_deletes_only_stale_layer_sets():
    text = fm.render_nft(*model(), existing_sets={"old_v4": {}, "bl_v4": {}, "mgmt_v4": {}, "jellyfin_ports": {}})
    assert [line for line in text.splitlines() if line.startswith("delete")] == ["delete set inet jellyfin_hardening old_v4"]


def test_iptables_same_order_with_goto_and_original_port():
    lines = fm.render_iptables(*model({"backend": "ipset"}), suffix="v4").splitlines()
    check = [line for line in lines if line.startswith("-A JFH-CHECK")]
    assert check == ["-A JFH-CHECK -p tcp -m set --match-set jfh_mgmt_v4 src -m conntrack --ctorigdstport 22 -j RETURN",
                     "-A JFH-CHECK -j JFH-BLOCKLIST", "-A JFH-CHECK -j JFH-BANS",
                     "-A JFH-CHECK -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", "-A JFH-CHECK -g JFH-ALLOW"]
    assert "-A JFH-BLOCKLIST -m set --match-set jfh_bl_v4 src -j DROP" in lines
    assert "-A JFH-BANS -p tcp -m set --match-set jfh_f2b_v4 src -m conntrack --ctorigdstport 8097 -j DROP" in lines
    allow = [line for line in lines if line.startswith("-A JFH-ALLOW")]
    assert allow[-1] == "-A JFH-ALLOW -g JFH-DENY" and all("RETURN" in line for line in allow[:-1]) and len(allow) == 3
    assert [line for line in lines if line.startswith("-A JFH-DENY")] == [
        "-A JFH-DENY -p tcp -m conntrack --ctorigdstport 8096 -j DROP", "-A JFH-DENY -p tcp -m conntrack --ctorigdstport 8097 -j DROP"]
    assert not any("-j ACCEPT" in line for line in lines), "an ACCEPT would end INPUT for every other firewall"
    assert lines[-1] == "COMMIT"


def test_ipv6_rules_use_the_v6_sets():
    text = fm.render_iptables(*model({"backend": "ipset"}), suffix="v6")
    assert "jfh_bl_v6" in text and "jfh_mgmt_v6" in text and "_v4" not in text


def test_ipset_creates_missing_sets_and_refills_only_management():
    text = fm.render_ipset(*model({"backend": "ipset"}), existing={"jfh_f2b_v4": {}})
    assert "create jfh_f2b_v6 hash:net family inet6\n" in text
    # A set that exists keeps its size: `create -exist` would refuse one a block list swapped in.
    assert "create jfh_f2b_v4 " not in text
    assert "flush jfh_mgmt_v4\nadd jfh_mgmt_v4 192.0.2.1/32" in text
    assert "flush jfh_f2b" not in text and "flush jfh_bl" not in text


@pytest.mark.parametrize("base, message", [
    ({"backend": "iptables"}, "backend 'iptables'"),
    ({"mgmt_v4": [], "mgmt_v6": []}, "no management source"),
    ({"mgmt_v4": ["10.0.0.300"]}, "10.0.0.300"),
    ({"jellyfin_ports": []}, "jellyfin_ports needs at least one port"),
    ({"mgmt_ports": [70000]}, "70000"),
])
def test_bad_base_names_the_value(base, message):
    with pytest.raises(fm.ModelError, match=message):
        model(base)


@pytest.mark.parametrize("layers, message", [
    ({"x": {"sets": [{"name": "Bad-Name"}]}}, "Bad-Name"),
    ({"x": {"sets": [{"name": "a" * 25}]}}, "a" * 25),
    ({"x": {"rules": [{"stage": "bans", "set": "nope"}]}}, "does not declare"),
    ({"x": {"rules": [{"stage": "bans"}]}}, "only a deny rule"),
    ({"x": {"rules": [{"stage": "later"}]}}, "needs a stage"),
    ({"x": {"sets": [{"name": "s"}], "rules": [{"stage": "allow", "set": "s", "ports": "all"}]}}, "Jellyfin ports only"),
    ({"x": {"sets": [{"name": "s"}]}, "y": {"sets": [{"name": "s"}]}}, "declared by both x and y"),
    ({"x": {"sets": [{"name": "mgmt"}]}}, "mgmt"),
    ({"bad name": {}}, "bad name"),
])
def test_bad_layer_names_the_value(layers, message):
    with pytest.raises(fm.ModelError, match=message):
        fm.check_layers(layers)


def test_read_swaps_in_a_candidate_and_drops_a_removed_layer(tmp_path):
    (tmp_path / "layers.d").mkdir()
    (tmp_path / "firewall.json").write_text(json.dumps(BASE))
    (tmp_path / "layers.d" / "30-bans.json").write_text(json.dumps(LAYERS["30-bans"]))
    (tmp_path / "layers.d" / "notes.txt").write_text("not a layer")
    candidate = tmp_path / "candidate"
    candidate.write_text(json.dumps(LAYERS["20-blocklist"]))
    assert sorted(fm.read(str(tmp_path))[1]) == ["30-bans"]
    assert sorted(fm.read(str(tmp_path), {"20-blocklist": str(candidate)})[1]) == ["20-blocklist", "30-bans"]
    assert fm.read(str(tmp_path), {"30-bans": None})[1] == {}
    candidate.write_text("{not json")
    with pytest.raises(fm.ModelError, match="20-blocklist"):
        fm.read(str(tmp_path), {"20-blocklist": str(candidate)})


STATIC = {"45-vpn": {"sets": [{"name": "vpn", "elements": ["10.44.0.7/24", "192.0.2.0/25", "192.0.2.128/25", "fd44::/64"]}],
                     "rules": [{"stage": "allow", "set": "vpn"}, {"stage": "deny"}]}}


def test_static_set_is_rewritten_on_every_nft_load_and_never_snapshotted():
    base, layers = model(layers=STATIC)
    lines = fm.render_nft(base, layers).splitlines()
    # Host bits masked and neighbours merged, so the kernel holds exactly what the model says.
    i = lines.index("add set inet jellyfin_hardening vpn_v4 { type ipv4_addr; flags interval; auto-merge; }")
    assert lines[i + 1:i + 3] == ["flush set inet jellyfin_hardening vpn_v4",
                                  "add element inet jellyfin_hardening vpn_v4 { 10.44.0.0/24, 192.0.2.0/24 }"]
    assert "add element inet jellyfin_hardening vpn_v6 { fd44::/64 }" in lines
    assert "add rule inet jellyfin_hardening restrict_allow ip saddr @vpn_v4 tcp dport @jellyfin_ports accept" in lines
    assert fm.snapshot_sets(layers, "nftables") == []


def test_static_set_without_a_family_is_flushed_and_left_empty():
    base, layers = model(layers={"45-vpn": {"sets": [{"name": "vpn", "elements": ["10.44.0.0/24"]}], "rules": []}})
    text = fm.render_nft(base, layers)
    assert "flush set inet jellyfin_hardening vpn_v6\n" in text and "vpn_v6 {" not in text.split("flush set inet jellyfin_hardening vpn_v6")[1]


def test_static_set_is_refilled_on_ipset_even_when_it_exists():
    base, layers = model({"backend": "ipset"}, STATIC)
    text = fm.render_ipset(base, layers, existing={"jfh_vpn_v4": {}})
    assert "create jfh_vpn_v4 " not in text
    assert "flush jfh_vpn_v4\nadd jfh_vpn_v4 10.44.0.0/24\nadd jfh_vpn_v4 192.0.2.0/24\n" in text
    assert "create jfh_vpn_v6 hash:net family inet6\nflush jfh_vpn_v6\nadd jfh_vpn_v6 fd44::/64\n" in text


@pytest.mark.parametrize("elements, message", [
    (["10.44.0.0/33"], "10.44.0.0/33"),
    ("10.44.0.0/24", "must be a list"),
    ([""], "empty layer x set s element"),
])
def test_bad_static_elements_name_the_value(elements, message):
    with pytest.raises(fm.ModelError, match=message):
        fm.check_layers({"x": {"sets": [{"name": "s", "elements": elements}]}})
