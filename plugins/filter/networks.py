# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import addresses


def networks(values, what="address"):
    """Validate, collapse and split addresses/CIDRs into nft set elements per family."""
    if isinstance(values, str):
        values = [values]
    try:
        v4, v6 = addresses.split_families(addresses.parse_networks(values or [], what))
    except addresses.AddressError as err:
        raise AnsibleFilterError(str(err))
    return {"v4": addresses.nft_elements(v4), "v6": addresses.nft_elements(v6)}


class FilterModule(object):
    def filters(self):
        return {"networks": networks}
