#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: jellyfin_audit
short_description: Read where a Jellyfin host stands - the hardening layers in force, their health, and findings by risk
version_added: 0.1.0
description:
  - Reads, on the Jellyfin host, which layers of this collection are in force and whether each works - the
    fail2ban jail loaded and matching a synthetic failed login (C(fail2ban-regex)), each block list's size in
    the kernel and the age of its last refresh, the allowlist's last sync and the names that do not resolve,
    WireGuard's peers and their last handshakes, oauth2-proxy answering, and the last Jellyfin upgrade.
  - Also reads Jellyfin's version against O(floor), the addresses Jellyfin's port listens on, and C(KnownProxies)
    against the reverse proxy in use, and returns findings ordered from high to low risk.
  - Changes nothing; the playbook C(homelab.jellyfin_hardening.audit) renders its result as a table and reports.
author:
  - homelab.jellyfin_hardening maintainers (@homelab)
options:
  url:
    description: Jellyfin's address on the host, for C(/System/Info/Public); its port is the one checked for listeners.
    type: str
    default: http://127.0.0.1:8096
  network_xml:
    description: Jellyfin's C(network.xml), for C(KnownProxies).
    type: path
    default: /etc/jellyfin/network.xml
  floor:
    description: The lowest Jellyfin version without known security holes.
    type: str
    default: 10.11.10
  stale_after:
    description: Seconds after which a block list refresh counts as overdue.
    type: int
    default: 86400
  timeout:
    description: Seconds to wait for each HTTP request (Jellyfin, oauth2-proxy).
    type: int
    default: 5
extends_documentation_fragment:
  - homelab.jellyfin_hardening.attributes.read_only
"""

EXAMPLES = r"""
- name: Audit the host
  homelab.jellyfin_hardening.jellyfin_audit:
  register: audit

- name: Fail on a high-risk finding
  ansible.builtin.assert:
    that: audit.findings | selectattr('risk', 'eq', 'high') | list | length == 0
    fail_msg: "{{ audit.findings | selectattr('risk', 'eq', 'high') | map(attribute='finding') | join('; ') }}"
"""

RETURN = r"""
state:
  description: Everything read - jellyfin (answers, version, listens_on), firewall, known_proxies, and one entry per layer.
  returned: always
  type: dict
  sample: {"jellyfin": {"answers": true, "version": "10.11.11", "listens_on": ["127.0.0.1"], "port": 8096}}
layers:
  description: Per layer (vpn, allowlist, sso, reverse_proxy, fail2ban, blocklist, patching) whether it is in force, healthy, and a detail.
  returned: always
  type: dict
  sample: {"fail2ban": {"in_force": true, "healthy": true, "detail": "jails: jellyfin, recidive, sshd; a synthetic failed login matches"}}
findings:
  description: What to fix, most risky first.
  returned: always
  type: list
  elements: dict
  sample: [{"risk": "high", "finding": "Jellyfin 10.11.9 is below the security floor 10.11.10", "fix": "upgrade now"}]
"""

from urllib.request import ProxyHandler, build_opener

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import detect, jellyfin_audit, jellyfin_patching, nft


def set_counts():
    """Element counts of the collection's sets, from nftables or ipset."""
    counts = {}
    tools = detect.detect()
    if tools["nft"]:
        try:
            objects = nft.list_table(nft.TABLE_FAMILY, nft.TABLE_NAME, nft=tools["nft"])
        except nft.NftError:
            objects = None
        counts.update({name: len(s["elements"]) for name, s in nft.sets_of(objects).items()})
    if tools["ipset"]:
        current = None
        for line in (detect.run_output([tools["ipset"], "list", "-t"]) or "").splitlines():
            if line.startswith("Name: "):
                current = line[6:].strip()
            elif line.startswith("Number of entries: ") and current:
                counts[current] = int(line.split(":", 1)[1])
    return counts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", default="http://127.0.0.1:8096"),
            network_xml=dict(type="path", default="/etc/jellyfin/network.xml"),
            floor=dict(type="str", default="10.11.10"),
            stale_after=dict(type="int", default=86400),
            timeout=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not jellyfin_patching.valid_floor(params["floor"]):
        module.fail_json(msg="floor %r is not a version like 10.11.10" % params["floor"])
    if not params["url"].startswith(("http://", "https://")):
        module.fail_json(msg="url %r is not an http:// or https:// address" % params["url"])
    try:
        jellyfin_audit.url_port(params["url"])
    except ValueError:
        module.fail_json(msg="url %r has a port outside 1-65535" % params["url"])
    for name in ("stale_after", "timeout"):
        if params[name] < 1:
            module.fail_json(msg="%s %d must be at least 1 second" % (name, params[name]))
    # Loopback requests: a proxy from the environment must not see them.
    opener = build_opener(ProxyHandler({}))
    state = jellyfin_audit.collect(params["url"], params["network_xml"], set_counts(), opener, params["timeout"])
    findings = [dict(risk=r, finding=f, fix=x) for r, f, x in jellyfin_audit.findings(state, params["floor"], params["stale_after"])]
    module.exit_json(changed=False, state=state, layers=jellyfin_audit.layers(state), findings=findings)


if __name__ == "__main__":
    main()
