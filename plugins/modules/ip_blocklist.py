#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ip_blocklist
short_description: Load a block list from several sources into the kernel in one atomic step
version_added: 0.1.0
description:
  - Downloads every source of one named block list, parses FireHOL netsets, Spamhaus DROP and address-per-line lists
    (comments, blank lines, addresses, CIDRs, ranges, IPv6), collapses overlapping networks, removes the exclusions, and
    replaces the content of the list's sets in one step - one C(nft -f) transaction, or C(ipset restore) into a new set
    sized to fit followed by C(ipset swap). There is no moment without protection.
  - The sets are those the blocklist role declares in the collection's firewall model (role C(firewall)) - C(NAME_v4) and
    C(NAME_v6) in the table C(inet jellyfin_hardening), or the ipsets C(jfh_NAME_v4) and C(jfh_NAME_v6). The module fails when
    they do not exist, except in check mode.
  - Nothing in force changes unless every source gave a usable list, fresh or its last good copy from O(cache_dir), and the
    result passes O(min_entries) and O(max_change_ratio). A source that returns HTML, an empty body or mostly lines that are not
    addresses is refused; the cached copy is used instead and the failure is reported in RV(sources_failed) and as a warning.
  - The host-side refresher that the blocklist role installs (timer, cron job, boot restore) runs this same code.
author:
  - homelab.jellyfin_hardening maintainers (@homelab)
options:
  name:
    description: Name of the list and of its firewall-model set, 1-24 lowercase letters, digits or C(_).
    type: str
    required: true
  sources:
    description:
      - URLs of the list's sources (C(https), C(http) or C(file)). Their entries are merged into one set.
      - Required with O(state=present).
    type: list
    elements: str
    default: []
  backend:
    description: The firewall model's backend on this host.
    type: str
    choices: [nftables, ipset]
    default: nftables
  family:
    description: Which address families to load. The set of a family not loaded is emptied.
    type: str
    choices: [both, ipv4, ipv6]
    default: both
  exclude:
    description:
      - Addresses, CIDRs or ranges never blocked, whatever a list says - the admin's, the LAN's, the reverse proxy's.
        Entries that overlap them are cut around them.
    type: list
    elements: str
    default: []
  exclude_defaults:
    description:
      - Built-in exclusions - C(private) (RFC 1918, 100.64.0.0/10 and fc00::/7), C(loopback), C(link_local), and
        C(host_addresses), this host's own addresses.
    type: list
    elements: str
    choices: [private, loopback, link_local, host_addresses]
    default: [private, loopback, link_local, host_addresses]
  min_entries:
    description: Refuse a result with fewer entries than this (an empty or truncated download).
    type: int
    default: 1
  max_change_ratio:
    description:
      - Refuse a result that would shrink the set in force by more than this fraction of its entries (a truncated or
        half-served list). C(1) turns the check off.
    type: float
    default: 0.3
  cache_dir:
    description: Where the last good copy of each source is kept (mode 0700), for failed downloads and for the boot restore.
    type: path
    default: /var/cache/jellyfin-hardening/blocklist
  timeout:
    description: Seconds allowed for each download.
    type: int
    default: 30
  offline:
    description: Use the cached copies only, download nothing (the boot restore).
    type: bool
    default: false
  state:
    description: C(absent) empties the list's sets and removes its cached copies.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Downloads and parses the sources and reports the counts; changes neither the sets nor the cache.
    support: full
  diff_mode:
    description: Shows the entries removed and added (the first 100 of each per set).
    support: full
notes:
  - Entries broader than C(/8) (IPv4) or C(/16) (IPv6) are refused and counted as invalid - a C(0.0.0.0/0) would block the
    internet. FireHOL level 1's C(224.0.0.0/3) (multicast and reserved, never a TCP client) is one of them.
  - Runs take a lock, so a refresh from the timer and a run from Ansible never overlap; a run waits at most 300 s for it.
seealso:
  - name: docs/firewall.md
    description: The firewall model and where the blocklist stage sits in it.
    link: https://github.com/homelab/jellyfin_hardening/blob/main/docs/firewall.md
"""

EXAMPLES = r"""
- name: Drop FireHOL level 1 and Spamhaus DROP, never the admin network
  homelab.jellyfin_hardening.ip_blocklist:
    name: firehol_level1
    sources:
      - https://iplists.firehol.org/files/firehol_level1.netset
      - https://www.spamhaus.org/drop/drop.txt
    exclude: [203.0.113.0/24]

- name: Refill the set from the cache only, as the boot restore does
  homelab.jellyfin_hardening.ip_blocklist:
    name: firehol_level1
    sources: [https://iplists.firehol.org/files/firehol_level1.netset]
    backend: ipset
    offline: true
"""

RETURN = r"""
entries:
  description: Entries per family after the run (what the sets hold, or would hold in check mode).
  returned: always
  type: dict
  sample: {v4: 4512, v6: 0}
added:
  description: Entries added per family.
  returned: always
  type: dict
  sample: {v4: 12, v6: 0}
removed:
  description: Entries removed per family.
  returned: always
  type: dict
  sample: {v4: 3, v6: 0}
invalid:
  description: Lines of the sources that were not usable entries (including entries broader than the limit).
  returned: always
  type: int
  sample: 1
invalid_sample:
  description: Up to ten of the invalid entries.
  returned: always
  type: list
  elements: str
  sample: [224.0.0.0/3]
sources_used:
  description: Each source and where its entries came from, C(download) or C(cache).
  returned: always
  type: list
  elements: dict
  sample: [{url: "https://iplists.firehol.org/files/firehol_level1.netset", from: download}]
sources_failed:
  description: Sources whose download failed or was refused, with the reason; their cached copy was used.
  returned: always
  type: list
  elements: dict
  sample: [{url: "https://example.org/list.txt", error: "https://example.org/list.txt is an HTML page, not an address list"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist

SETTINGS = ("name", "sources", "backend", "family", "exclude", "exclude_defaults", "min_entries",
            "max_change_ratio", "cache_dir", "timeout", "state")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            sources=dict(type="list", elements="str", default=[]),
            backend=dict(type="str", choices=["nftables", "ipset"], default="nftables"),
            family=dict(type="str", choices=["both", "ipv4", "ipv6"], default="both"),
            exclude=dict(type="list", elements="str", default=[]),
            exclude_defaults=dict(type="list", elements="str", choices=list(blocklist.EXCLUDE_DEFAULTS),
                                  default=list(blocklist.EXCLUDE_DEFAULTS)),
            min_entries=dict(type="int", default=1),
            max_change_ratio=dict(type="float", default=0.3),
            cache_dir=dict(type="path", default=blocklist.DEFAULT_CACHE_DIR),
            timeout=dict(type="int", default=30),
            offline=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ("sources",))],
        supports_check_mode=True,
    )
    config = {key: module.params[key] for key in SETTINGS}
    try:
        result = blocklist.apply(config, check_mode=module.check_mode, offline=module.params["offline"], want_diff=module._diff)
    except blocklist.BlocklistError as err:
        module.fail_json(msg=str(err))
    for failure in result["sources_failed"]:
        module.warn("block list %s: %s; its cached copy was used" % (result["name"], failure["error"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
