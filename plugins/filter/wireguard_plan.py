# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

PEER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
PEER_KEYS = {"name", "address", "public_key", "generate", "persistent_keepalive"}


def _server_interface(value):
    try:
        iface = ipaddress.ip_interface(str(value).strip())
    except ValueError:
        raise AnsibleFilterError("wireguard_address %r is not an address with a prefix, such as 10.44.0.1/24" % (value,))
    net = iface.network
    if iface.version != 4 or net.prefixlen > 30 or iface.ip in (net.network_address, net.broadcast_address):
        raise AnsibleFilterError("wireguard_address %r must be an IPv4 host address in a network of /30 or larger, "
                                 "such as 10.44.0.1/24" % (value,))
    return iface


def _public_key(name, value):
    try:
        raw = base64.b64decode(str(value).strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32 or len(str(value).strip()) != 44:
        raise AnsibleFilterError("wireguard peer %s: public_key %r is not a WireGuard key (44 characters of base64, 32 bytes)"
                                 % (name, value))
    return str(value).strip()


def wireguard_plan(peers, server_address):
    """Validate the server's address and the peers; return the VPN network and the peers normalized, in order."""
    iface = _server_interface(server_address)
    if not isinstance(peers, list):
        raise AnsibleFilterError("wireguard_peers must be a list of peers, got %r" % (peers,))
    result, names, taken, keys = [], set(), {iface.ip}, set()
    for peer in peers:
        if not isinstance(peer, dict) or set(peer) - PEER_KEYS:
            raise AnsibleFilterError("wireguard peer %r: a mapping with %s only" % (peer, ", ".join(sorted(PEER_KEYS))))
        name = peer.get("name")
        if not isinstance(name, string_types) or not PEER_NAME.match(name) or name in names:
            raise AnsibleFilterError("wireguard peer name %r: 1-32 lowercase letters, digits, '_' or '-', unique" % (name,))
        names.add(name)
        try:
            address = ipaddress.ip_address(str(peer.get("address", "")).strip())
        except ValueError:
            raise AnsibleFilterError("wireguard peer %s: address %r is not an IPv4 address" % (name, peer.get("address")))
        if address not in iface.network or address in (iface.network.network_address, iface.network.broadcast_address):
            raise AnsibleFilterError("wireguard peer %s: address %s is not a host of the VPN network %s"
                                     % (name, address, iface.network))
        if address in taken:
            raise AnsibleFilterError("wireguard peer %s: address %s is already the server's or another peer's" % (name, address))
        taken.add(address)
        generate = peer.get("generate", False)
        if not isinstance(generate, bool) or generate == ("public_key" in peer):
            raise AnsibleFilterError("wireguard peer %s: give either public_key (the peer's own key, recommended) "
                                     "or generate: true" % name)
        key = None if generate else _public_key(name, peer["public_key"])
        if key is not None and key in keys:
            raise AnsibleFilterError("wireguard peer %s: public_key is another peer's too" % name)
        keys.add(key)
        keepalive = peer.get("persistent_keepalive")
        if keepalive is not None and (isinstance(keepalive, bool) or not isinstance(keepalive, int) or not 0 <= keepalive <= 65535):
            raise AnsibleFilterError("wireguard peer %s: persistent_keepalive %r is not 0-65535 seconds" % (name, keepalive))
        result.append({"name": name, "address": str(address), "allowed_ips": "%s/32" % address,
                       "public_key": key, "generate": generate, "persistent_keepalive": keepalive})
    return {"network": str(iface.network), "server": str(iface.ip), "peers": result}


class FilterModule(object):
    def filters(self):
        return {"wireguard_plan": wireguard_plan}
