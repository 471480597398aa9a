"""network.xml editing: only the managed arrays change, and only when their content differs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import jellyfin_config as jc

JELLYFIN_WRITTEN = """<?xml version="1.0" encoding="utf-8"?>
<NetworkConfiguration xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <BaseUrl />
  <EnableRemoteAccess>true</EnableRemoteAccess>
  <KnownProxies />
  <LocalNetworkSubnets>
    <string>192.168.1.0/24</string>
  </LocalNetworkSubnets>
  <InternalHttpPort>8096</InternalHttpPort>
</NetworkConfiguration>
"""


def test_sets_known_proxies_and_keeps_everything_else():
    root = jc.parse(JELLYFIN_WRITTEN)
    assert jc.set_array(root, "KnownProxies", ["127.0.0.1", "::1"])
    again = jc.parse(jc.render(root))
    assert jc.get_array(again, "KnownProxies") == ["127.0.0.1", "::1"]
    assert jc.get_array(again, "LocalNetworkSubnets") == ["192.168.1.0/24"]
    assert again.find("InternalHttpPort").text == "8096" and again.find("EnableRemoteAccess").text == "true"
    assert not jc.set_array(again, "KnownProxies", ["127.0.0.1", "::1"]), "same content must not count as a change"


def test_missing_file_starts_an_empty_configuration():
    root = jc.parse("")
    assert jc.set_array(root, "KnownProxies", ["10.0.0.2"])
    assert "<KnownProxies>\n    <string>10.0.0.2</string>\n  </KnownProxies>" in jc.render(root)


@pytest.mark.parametrize("text, message", [("<NetworkConfiguration>", "not valid XML"), ("<Other/>", "root <Other>")])
def test_foreign_files_are_refused_with_the_path(text, message):
    with pytest.raises(jc.ConfigError, match=message) as err:
        jc.parse(text, "/etc/jellyfin/network.xml")
    assert "/etc/jellyfin/network.xml" in str(err.value)


@pytest.mark.parametrize("current, additions, expected", [
    # Inside Jellyfin's private-range default already: nothing to write.
    ([], ["10.44.0.0/24"], []),
    # Outside it: the default is written out first, or the LAN would stop being local.
    ([], ["100.64.0.0/24"], ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/24"]),
    (["192.168.1.0/24"], ["10.44.0.7/24", "192.168.1.0/25"], ["192.168.1.0/24", "10.44.0.0/24"]),
    (["192.168.1.0/24", "10.44.0.0/24"], ["10.44.0.0/24"], ["192.168.1.0/24", "10.44.0.0/24"]),
])
def test_local_subnets_keep_what_is_local_now(current, additions, expected):
    assert jc.with_local_subnets(current, additions) == expected


def test_local_subnet_under_an_exclusion_is_refused_by_name():
    with pytest.raises(jc.ConfigError, match=r"!10\.44\.0\.0/16, which overlaps 10\.44\.0\.0/24"):
        jc.with_local_subnets(["10.0.0.0/8", "!10.44.0.0/16"], ["10.44.0.0/24"])
