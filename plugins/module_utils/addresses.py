# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Address and network handling shared by every firewall-touching module and host-side job."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress


class AddressError(ValueError):
    """A value that is not an address or network; the message names the value."""


def parse_network(value, what="address"):
    """Parse an address or CIDR into a network, naming the bad value on failure.

    Host bits are allowed (``192.0.2.7/24`` means ``192.0.2.0/24``), as firewall users write them.
    IPv4-mapped IPv6 addresses are read as the IPv4 address they carry.
    """
    text = str(value).strip()
    if not text:
        raise AddressError("empty %s" % what)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise AddressError("%s %r is not an IPv4/IPv6 address or CIDR" % (what, value))
    if network.version == 6 and network.network_address.ipv4_mapped is not None and network.prefixlen >= 96:
        network = ipaddress.ip_network("%s/%d" % (network.network_address.ipv4_mapped, network.prefixlen - 96))
    return network


def parse_networks(values, what="address"):
    return [parse_network(value, what) for value in values]


def split_families(networks):
    """Return (IPv4 networks, IPv6 networks), each collapsed and sorted."""
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    return list(ipaddress.collapse_addresses(v4)), list(ipaddress.collapse_addresses(v6))


def subtract(networks, excluded):
    """Networks minus the excluded ones (a network partly excluded is split around the hole)."""
    result = []
    for network in networks:
        pieces = [network]
        for hole in excluded:
            if hole.version != network.version:
                continue
            next_pieces = []
            for piece in pieces:
                if piece.subnet_of(hole):
                    continue
                if hole.subnet_of(piece):
                    next_pieces.extend(piece.address_exclude(hole))
                else:
                    next_pieces.append(piece)
            pieces = next_pieces
        result.extend(pieces)
    return result


def contains(networks, address):
    """True when the address (or network) lies inside one of the networks."""
    target = parse_network(address)
    return any(target.version == n.version and target.subnet_of(n) for n in networks)


def nft_elements(networks):
    """Render networks as nft set elements: a bare address for a host, CIDR otherwise."""
    return [str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in networks]
