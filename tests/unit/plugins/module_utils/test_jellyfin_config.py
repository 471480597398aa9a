"""network.xml editing: only the managed arrays change, and only when their content differs."""

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
