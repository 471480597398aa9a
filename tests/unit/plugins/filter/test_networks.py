import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.jellyfin_hardening.plugins.filter.networks import networks


def test_networks_splits_families():
    assert networks(["192.0.2.7/24", "192.0.2.0/25", "2001:db8::5"]) == {"v4": ["192.0.2.0/24"], "v6": ["2001:db8::5"]}


def test_networks_takes_a_single_string_and_nothing():
    assert networks("192.0.2.7") == {"v4": ["192.0.2.7"], "v6": []}
    assert networks([]) == {"v4": [], "v6": []}


def test_networks_names_the_bad_value():
    with pytest.raises(AnsibleFilterError, match="firewall_management_sources entry '10.0.0.300'"):
        networks(["192.0.2.1", "10.0.0.300"], "firewall_management_sources entry")
