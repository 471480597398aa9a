#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: netfilter_facts
short_description: Report the host's firewall tooling and the state of the collection's nftables table
version_added: 0.1.0
description:
  - Detects what the host uses for its firewall (nft, iptables-nft or iptables-legacy, ipset, ufw, Docker)
    and reads the collection's own table C(inet jellyfin_hardening) with the size of each of its sets.
  - Read-only. The firewall role and the audit playbook use it.
author:
  - homelab.jellyfin_hardening maintainers (@homelab)
options:
  table:
    description: Name of the nftables table (family C(inet)) to report on.
    type: str
    default: jellyfin_hardening
extends_documentation_fragment:
  - homelab.jellyfin_hardening.attributes.read_only
attributes:
  facts:
    description: Returns its result as facts under C(jellyfin_hardening_netfilter).
    support: full
notes:
  - Runs C(nft -j list table), C(iptables -V) and C(ufw status) with timeouts; a tool that is missing is reported as C(null).
"""

EXAMPLES = r"""
- name: Read the firewall facts
  homelab.jellyfin_hardening.netfilter_facts:

- name: Show the size of the blocklist set
  ansible.builtin.debug:
    msg: "{{ ansible_facts.jellyfin_hardening_netfilter.table.sets.blocklist_v4.count | default(0) }} networks blocked"
"""

RETURN = r"""
ansible_facts:
  description: Facts under the key C(jellyfin_hardening_netfilter).
  returned: always
  type: complex
  contains:
    jellyfin_hardening_netfilter:
      description: What was found.
      returned: always
      type: complex
      contains:
        tools:
          description: Paths of nft, iptables, ipset and ufw (null when missing), the iptables variant (C(nft) or C(legacy)),
            whether ufw is active, whether Docker is present, whether Debian's nftables.service exists, and the recommended backend.
          returned: always
          type: dict
          sample: {"nft": "/usr/sbin/nft", "iptables": "/usr/sbin/iptables", "iptables_variant": "nft", "ipset": null,
                   "ufw": null, "ufw_active": false, "docker": false, "nftables_service": true, "recommended_backend": "nftables"}
        table:
          description: The collection's table.
          returned: always
          type: complex
          contains:
            exists:
              description: Whether the table is loaded.
              type: bool
              returned: always
            chains:
              description: Names of its chains.
              type: list
              elements: str
              returned: always
            sets:
              description: Each set's type and element count.
              type: dict
              returned: always
              sample: {"mgmt_v4": {"type": "ipv4_addr", "count": 1}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import detect, nft


def main():
    module = AnsibleModule(argument_spec=dict(table=dict(type="str", default=nft.TABLE_NAME)), supports_check_mode=True)
    tools = detect.detect()
    table = {"exists": False, "chains": [], "sets": {}}
    if tools["nft"]:
        try:
            objects = nft.list_table(nft.TABLE_FAMILY, module.params["table"], nft=tools["nft"])
        except nft.NftError as err:
            module.fail_json(msg=str(err))
        if objects is not None:
            table["exists"] = True
            table["chains"] = sorted(obj["chain"]["name"] for obj in objects if "chain" in obj)
            table["sets"] = {name: {"type": s["type"], "count": len(s["elements"])} for name, s in nft.sets_of(objects).items()}
    module.exit_json(changed=False, ansible_facts={"jellyfin_hardening_netfilter": {"tools": tools, "table": table}})


if __name__ == "__main__":
    main()
