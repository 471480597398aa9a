#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: jellyfin_network
short_description: Set KnownProxies, LocalNetworkSubnets and LocalNetworkAddresses in Jellyfin's network.xml
version_added: 0.1.0
description:
  - Sets the C(KnownProxies) array of Jellyfin's C(network.xml), so that Jellyfin 10.10.7 and later logs the
    client's address from C(X-Forwarded-For) instead of the reverse proxy's, and optionally C(LocalNetworkSubnets)
    and C(LocalNetworkAddresses) (the addresses Jellyfin binds to).
  - Every other element of the file is kept. Jellyfin reads the file at start, so restart it when this module
    reports a change (the fail2ban and reverse_proxy roles do that in a handler).
author:
  - homelab.jellyfin_hardening maintainers (@homelab)
options:
  path:
    description:
      - Path of network.xml - C(/etc/jellyfin/network.xml) for the Debian package, C(<config>/config/network.xml)
        for the Docker image. Created with only the managed arrays when it does not exist.
    type: path
    required: true
  known_proxies:
    description: Addresses or CIDRs of the reverse proxies in front of Jellyfin, in this order. Omit to leave the array alone.
    type: list
    elements: str
  local_network_subnets:
    description: CIDRs Jellyfin treats as the local network (the LAN, a VPN). Omit to leave the array alone.
    type: list
    elements: str
  local_network_subnets_add:
    description:
      - CIDRs that must count as local (a VPN's network), keeping everything Jellyfin deems local now. Nothing
        changes when they already are. While C(LocalNetworkSubnets) is empty, Jellyfin's default (the private
        IPv4 ranges) is written out first, so the LAN stays local.
      - Fails, naming the entry, when a C(!) exclusion in the file overlaps one of them.
    type: list
    elements: str
    version_added: 0.1.0
  local_network_addresses:
    description:
      - Addresses Jellyfin listens on (an empty list means every interface). C([127.0.0.1]) keeps Jellyfin off every
        network interface, for a reverse proxy on the same host. Omit to leave the array alone.
    type: list
    elements: str
    version_added: 0.1.0
attributes:
  check_mode:
    description: Reports what would change without writing.
    support: full
  diff_mode:
    description: Shows the file before and after.
    support: full
notes:
  - Writes the file atomically, keeping its owner, group and mode.
"""

EXAMPLES = r"""
- name: Let Jellyfin see the client's address behind nginx on the same host
  homelab.jellyfin_hardening.jellyfin_network:
    path: /etc/jellyfin/network.xml
    known_proxies: [127.0.0.1, "::1"]
  notify: Restart Jellyfin

- name: Treat WireGuard clients as local, keeping the LAN local
  homelab.jellyfin_hardening.jellyfin_network:
    path: /etc/jellyfin/network.xml
    local_network_subnets_add: [10.44.0.0/24]
  notify: Restart Jellyfin
"""

RETURN = r"""
known_proxies:
  description: The KnownProxies array after the run.
  returned: always
  type: list
  elements: str
  sample: ["127.0.0.1"]
local_network_subnets:
  description: The LocalNetworkSubnets array after the run.
  returned: always
  type: list
  elements: str
  sample: ["192.168.1.0/24"]
local_network_addresses:
  description: The LocalNetworkAddresses array after the run.
  returned: always
  type: list
  elements: str
  sample: ["127.0.0.1"]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import addresses, jellyfin_config


ARRAYS = (("known_proxies", "KnownProxies"), ("local_network_subnets", "LocalNetworkSubnets"),
          ("local_network_addresses", "LocalNetworkAddresses"))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            known_proxies=dict(type="list", elements="str"),
            local_network_subnets=dict(type="list", elements="str"),
            local_network_subnets_add=dict(type="list", elements="str"),
            local_network_addresses=dict(type="list", elements="str"),
        ),
        mutually_exclusive=[("local_network_subnets", "local_network_subnets_add")],
        supports_check_mode=True,
    )
    path = module.params["path"]
    wanted = {}
    try:
        for option, array in ARRAYS:
            if module.params[option] is not None:
                # Validated, but written as the user gave them: Jellyfin accepts addresses and CIDRs.
                addresses.parse_networks(module.params[option], option + " entry")
                wanted[array] = [value.strip() for value in module.params[option]]
    except addresses.AddressError as err:
        module.fail_json(msg=to_native(err))
    before = ""
    if os.path.exists(path):
        with open(path) as handle:
            before = handle.read()
    try:
        root = jellyfin_config.parse(before, path)
    except jellyfin_config.ConfigError as err:
        module.fail_json(msg=to_native(err))
    try:
        if module.params["local_network_subnets_add"] is not None:
            wanted["LocalNetworkSubnets"] = jellyfin_config.with_local_subnets(
                jellyfin_config.get_array(root, "LocalNetworkSubnets"), module.params["local_network_subnets_add"])
    except (addresses.AddressError, jellyfin_config.ConfigError) as err:
        module.fail_json(msg=to_native(err))
    changed = False
    for array, values in wanted.items():
        changed = jellyfin_config.set_array(root, array, values) or changed
    after = jellyfin_config.render(root) if changed else before
    result = dict((option, jellyfin_config.get_array(root, array)) for option, array in ARRAYS)
    result["changed"] = changed
    if changed and module._diff:
        result["diff"] = dict(before=before, after=after, before_header=path, after_header=path)
    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            module.fail_json(msg="the directory of %s does not exist: is Jellyfin installed at that path?" % path)
        tmp = os.path.join(directory, ".network.xml.jellyfin-hardening")
        with open(tmp, "w") as handle:
            handle.write(after)
        module.atomic_move(tmp, path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
