
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import addresses


def net(text):
    return ipaddress.ip_network(text)


@pytest.mark.parametrize("value,expected", [
    ("192.0.2.7", "192.0.2.7/32"),
    ("192.0.2.7/24", "192.0.2.0/24"),
    (" 2001:db8::5 ", "2001:db8::5/128"),
    ("::ffff:192.0.2.7", "192.0.2.7/32"),
    ("::ffff:192.0.2.0/120", "192.0.2.0/24"),
])
def test_parse_network(value, expected):
    assert addresses.parse_network(value) == net(expected)


@pytest.mark.parametrize("value", ["", "10.0.0.300", "example.org", "192.0.2.0/33"])
def test_parse_network_names_the_bad_value(value):
    with pytest.raises(addresses.AddressError) as err:
        addresses.parse_network(value, "firewall_management_sources entry")
    assert "firewall_management_sources entry" in str(err.value)
    assert repr(value) in str(err.value) or value == ""


def test_split_families_collapses_and_sorts():
    v4, v6 = addresses.split_families(addresses.parse_networks(["192.0.2.128/25", "2001:db8::/64", "192.0.2.0/25", "192.0.2.9"]))
    assert v4 == [net("192.0.2.0/24")]
    assert v6 == [net("2001:db8::/64")]


def test_subtract_splits_around_the_hole_and_drops_covered_networks():
    result = addresses.subtract([net("10.0.0.0/8"), net("192.0.2.0/24"), net("2001:db8::/32")],
                                [net("10.128.0.0/9"), net("192.0.0.0/16")])
    assert result == [net("10.0.0.0/9"), net("2001:db8::/32")]


def test_contains():
    nets = [net("192.0.2.0/24")]
    assert addresses.contains(nets, "192.0.2.200")
    assert not addresses.contains(nets, "198.51.100.1")
    assert not addresses.contains(nets, "2001:db8::1")


def test_nft_elements_renders_hosts_bare():
    assert addresses.nft_elements([net("192.0.2.7/32"), net("192.0.2.0/24"), net("2001:db8::1/128")]) == \
        ["192.0.2.7", "192.0.2.0/24", "2001:db8::1"]
