"""The audit's findings and layer table, from states as collect() returns them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import jellyfin_audit as ja

FLOOR = "10.11.10"
# A public host as setup (b) leaves it: nginx with SSO, fail2ban, block lists, patching; Jellyfin on loopback.
HARDENED = {
    "jellyfin": {"url": "http://127.0.0.1:8096", "answers": True, "version": "10.11.11", "listens_on": ["127.0.0.1"], "port": 8096},
    "firewall": {"backend": "nftables", "public_ports": [80, 443], "layers": ["20-blocklist.json", "30-fail2ban.json"]},
    "known_proxies": ["127.0.0.1", "::1"],
    "fail2ban": {"in_force": True, "running": True, "jails": ["jellyfin", "recidive", "sshd"], "filter_matches": True},
    "blocklist": {"in_force": True, "lists": [{"name": "firehol_level1", "entries": 4500, "refreshed_seconds_ago": 600}]},
    "allowlist": {"in_force": False, "names": [], "unresolved": [], "synced_seconds_ago": None},
    "wireguard": {"in_force": False, "configured": [], "interfaces": [], "peers": [], "vpn_only": False},
    "sso": {"in_force": True, "answers": True},
    "reverse_proxy": {"in_force": True},
    "patching": {"jellyfin": True, "host_security_updates": True, "last_result": "upgraded", "last_message": "ok"},
}


def state(**changes):
    """HARDENED with some parts changed: state(jellyfin={"version": "10.11.9"})."""
    result = copy.deepcopy(HARDENED)
    for part, values in changes.items():
        if isinstance(result[part], dict) and isinstance(values, dict):
            result[part].update(values)
        else:
            result[part] = values
    return result


def risks(found):
    return [f[0] for f in found]


def test_a_hardened_public_host_has_only_the_low_vpn_advice():
    assert ja.findings(state(), FLOOR) == [
        ("low", "Jellyfin is open to the whole internet (no VPN, no allowlist)", "the VPN is the best option if your users can run it")]
    assert all(layer["healthy"] for name, layer in ja.layers(state()).items() if layer["in_force"])


def test_a_version_below_the_floor_is_the_first_finding():
    found = ja.findings(state(jellyfin={"version": "10.11.9"}, fail2ban={"jails": ["sshd"]}), FLOOR)
    assert found[0] == ("high", "Jellyfin 10.11.9 is below the security floor 10.11.10", "upgrade now; the patching layer keeps it current")
    assert risks(found) == sorted(risks(found), key=ja.RISK_ORDER.get)


def test_jellyfin_not_answering_is_high_and_says_where_it_asked():
    found = ja.findings(state(jellyfin={"answers": False, "version": None}), FLOOR)
    assert found[0][:2] == ("high", "Jellyfin does not answer at http://127.0.0.1:8096")


def test_a_public_listener_without_allowlist_or_vpn_is_high_and_names_the_sso_bypass():
    found = ja.findings(state(jellyfin={"listens_on": ["0.0.0.0", "::"]}), FLOOR)
    assert found[0][0] == "high" and "listens on 0.0.0.0, ::" in found[0][1] and "SSO can be bypassed" in found[0][2]


def test_a_public_listener_behind_the_allowlist_or_vpn_only_is_not_a_finding():
    for change in ({"allowlist": {"in_force": True, "names": ["a.ddns.test"], "synced_seconds_ago": 60}},
                   {"wireguard": {"in_force": True, "interfaces": ["wg0"], "vpn_only": True}}):
        found = ja.findings(state(jellyfin={"listens_on": ["0.0.0.0"]}, **change), FLOOR)
        assert not [f for f in found if "listens on" in f[1]], found


def test_a_jail_that_is_missing_or_does_not_match_is_medium():
    assert ("medium", "fail2ban is set up but its jellyfin jail is not loaded") == \
        ja.findings(state(fail2ban={"jails": ["sshd"]}), FLOOR)[0][:2]
    assert "not matching a failed login" in ja.findings(state(fail2ban={"filter_matches": False}), FLOOR)[0][1]
    assert ja.layers(state(fail2ban={"filter_matches": False}))["fail2ban"]["healthy"] is False


def test_an_empty_or_stale_block_list_is_medium():
    empty = ja.findings(state(blocklist={"lists": [{"name": "l1", "entries": 0, "refreshed_seconds_ago": 60}]}), FLOOR)
    assert empty[0] == ("medium", "block list l1 is empty in the kernel", "systemctl start jellyfin-hardening-blocklist")
    stale = ja.findings(state(blocklist={"lists": [{"name": "l1", "entries": 9, "refreshed_seconds_ago": 3 * 86400}]}), FLOOR)
    assert stale[0][:2] == ("medium", "block list l1 was not refreshed for 3 d")


def test_unresolved_allowlist_names_and_an_old_sync_are_medium():
    found = ja.findings(state(allowlist={"in_force": True, "names": ["a.ddns.test", "b.ddns.test"], "unresolved": ["b.ddns.test"],
                                         "synced_seconds_ago": 7200}), FLOOR)
    assert ("medium", "allowlist names that do not resolve: b.ddns.test") in [f[:2] for f in found]
    assert ("medium", "the allowlist was not synced for 2 h") in [f[:2] for f in found]


def test_sso_down_and_known_proxies_without_the_proxy_are_medium():
    found = [f[:2] for f in ja.findings(state(sso={"answers": False}, known_proxies=None), FLOOR)]
    assert ("medium", "oauth2-proxy does not answer on 127.0.0.1:4180: the web UI fails closed") in found
    assert ("medium", "nginx is in front of Jellyfin but KnownProxies (none) does not list it") in found


def test_state_that_is_not_a_dict_part_can_be_replaced():
    # known_proxies is a list, not a dict: state() must replace it, which this checks for the helper itself.
    assert state(known_proxies=None)["known_proxies"] is None


def test_a_rolled_back_upgrade_and_missing_patching_are_medium():
    found = [f[:2] for f in ja.findings(state(patching={"last_result": "rolled_back", "last_message": "10.11.12 unhealthy"}), FLOOR)]
    assert ("medium", "the last Jellyfin upgrade rolled back: 10.11.12 unhealthy") in found
    off = [f[:2] for f in ja.findings(state(patching={"jellyfin": False, "host_security_updates": False, "last_result": None}), FLOOR)]
    assert ("medium", "automated patching is off") in off


def test_a_host_off_the_internet_gets_no_exposure_advice():
    private = state(jellyfin={"listens_on": ["0.0.0.0"]}, sso={"in_force": False, "answers": False}, reverse_proxy={"in_force": False},
                    fail2ban={"in_force": False, "jails": []}, blocklist={"in_force": False, "lists": []},
                    wireguard={"in_force": True, "interfaces": ["wg0"], "vpn_only": True,
                               "peers": [{"interface": "wg0", "public_key": "abc...", "allowed_ips": "10.44.0.2/32",
                                          "handshake_seconds_ago": 30}]})
    assert ja.findings(private, FLOOR) == []
    assert ja.layers(private)["vpn"] == {"in_force": True, "healthy": True, "detail": "peers: 1, with a handshake: 1"}


def test_url_port_is_the_urls_port_or_jellyfins_default():
    assert ja.url_port("http://127.0.0.1:8097/") == 8097
    assert ja.url_port("http://127.0.0.1") == 8096
    # An IPv6 literal's last group is not a port.
    assert ja.url_port("http://[::1]") == 8096
    assert ja.url_port("http://[::1]:8920/jellyfin") == 8920


def test_url_port_refuses_a_port_out_of_range():
    with pytest.raises(ValueError):
        ja.url_port("http://127.0.0.1:70000")
