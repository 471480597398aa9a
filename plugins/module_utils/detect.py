# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host uses for its firewall: nftables, iptables-nft or -legacy, ufw, Docker."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess

SEARCH_PATH = "/usr/sbin:/sbin:/usr/bin:/bin:/usr/local/sbin:/usr/local/bin"


def run_output(cmd, timeout=10):
    """A read-only command's stdout and stderr, or None when it fails or is missing."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout + proc.stderr).strip() if proc.returncode == 0 else None


def iptables_variant(version_output):
    """'nft', 'legacy' or None from `iptables -V` output such as 'iptables v1.8.9 (nf_tables)'."""
    if not version_output:
        return None
    if "nf_tables" in version_output:
        return "nft"
    if "legacy" in version_output:
        return "legacy"
    # iptables before 1.8 prints no variant: those are legacy.
    return "legacy"


def ufw_active(status_output):
    return bool(status_output) and status_output.splitlines()[0].strip().lower() == "status: active"


def detect(which=None, output=None, exists=os.path.exists):
    """Detect the host's firewall tooling. The three callables are injectable for unit tests."""
    which = which or (lambda name: shutil.which(name, path=SEARCH_PATH))
    output = output or run_output
    facts = {"nft": which("nft"), "iptables": which("iptables"), "ipset": which("ipset"), "ufw": which("ufw")}
    facts["iptables_variant"] = iptables_variant(output([facts["iptables"], "-V"])) if facts["iptables"] else None
    facts["ufw_active"] = ufw_active(output([facts["ufw"], "status"])) if facts["ufw"] else False
    facts["docker"] = bool(which("dockerd")) or exists("/var/run/docker.sock")
    facts["nftables_service"] = exists("/lib/systemd/system/nftables.service") or exists("/usr/lib/systemd/system/nftables.service")
    # A drop in any table is final, so nftables works beside iptables-legacy rules too; ipset is
    # for hosts without nft.
    facts["recommended_backend"] = "nftables" if facts["nft"] else ("ipset" if facts["ipset"] and facts["iptables"] else None)
    return facts
