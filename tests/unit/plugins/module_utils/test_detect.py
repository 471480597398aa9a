
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import detect


def fake(paths, outputs, files=()):
    return dict(which=paths.get, output=lambda cmd: outputs.get(cmd[-1]), exists=lambda path: path in files)


def test_iptables_variants():
    assert detect.iptables_variant("iptables v1.8.9 (nf_tables)") == "nft"
    assert detect.iptables_variant("iptables v1.8.9 (legacy)") == "legacy"
    assert detect.iptables_variant("iptables v1.6.1") == "legacy"
    assert detect.iptables_variant(None) is None


def test_nftables_host_with_docker():
    facts = detect.detect(**fake({"nft": "/usr/sbin/nft", "iptables": "/usr/sbin/iptables", "dockerd": "/usr/sbin/dockerd"},
                                 {"-V": "iptables v1.8.9 (nf_tables)"}, {"/lib/systemd/system/nftables.service"}))
    assert facts["iptables_variant"] == "nft"
    assert facts["docker"] and facts["nftables_service"]
    assert facts["recommended_backend"] == "nftables"
    assert facts["ufw_active"] is False


def test_legacy_host_without_nft_gets_ipset():
    facts = detect.detect(**fake({"iptables": "/sbin/iptables", "ipset": "/sbin/ipset", "ufw": "/usr/sbin/ufw"},
                                 {"-V": "iptables v1.8.7 (legacy)", "status": "Status: active\n\nTo Action From"}))
    assert facts["recommended_backend"] == "ipset"
    assert facts["ufw_active"] is True
    assert facts["docker"] is False


def test_inactive_ufw():
    assert not detect.ufw_active("Status: inactive")
    assert not detect.ufw_active(None)
