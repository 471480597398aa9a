# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and changing Jellyfin's network.xml (root NetworkConfiguration, arrays as <string> children)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import xml.etree.ElementTree as ET

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import addresses

ROOT = "NetworkConfiguration"
# The array elements this collection manages; every other element is kept as it is.
ARRAYS = ("KnownProxies", "LocalNetworkSubnets")
# What Jellyfin deems local while LocalNetworkSubnets is empty (NetworkManager.InitializeLan; IPv6 ranges
# only with EnableIPv6). Loopback is always local.
DEFAULT_LAN_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


class ConfigError(ValueError):
    """network.xml is not what Jellyfin writes; the message names the file and the problem."""


def parse(text, path="network.xml"):
    """The document's root element; a missing or empty file gives an empty NetworkConfiguration."""
    if not text or not text.strip():
        return ET.Element(ROOT)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ConfigError("%s is not valid XML (%s): fix or remove it first" % (path, err))
    if root.tag != ROOT:
        raise ConfigError("%s has root <%s>, not <%s>: is this Jellyfin's network.xml?" % (path, root.tag, ROOT))
    return root


def get_array(root, name):
    element = root.find(name)
    if element is None:
        return []
    return [(child.text or "").strip() for child in element.findall("string") if (child.text or "").strip()]


def set_array(root, name, values):
    """Replace the array's entries (creating it when missing); True when that changed anything."""
    if get_array(root, name) == list(values):
        return False
    element = root.find(name)
    if element is None:
        element = ET.SubElement(root, name)
    for child in list(element):
        element.remove(child)
    element.text = None
    for value in values:
        ET.SubElement(element, "string").text = value
    return True


def with_local_subnets(current, additions):
    """LocalNetworkSubnets that make every addition local and keep local what Jellyfin deems local now.

    An addition already inside the local network changes nothing. Writing a first entry would replace
    Jellyfin's private-range default (and lock the LAN out where remote access is off), so that default
    is written out first. An addition that a ``!`` entry excludes is refused: that exclusion would win.
    """
    base = list(current) or list(DEFAULT_LAN_V4)
    include = [addresses.parse_network(v, "LocalNetworkSubnets entry") for v in base if not v.startswith("!")]
    exclude = [addresses.parse_network(v[1:], "LocalNetworkSubnets entry") for v in base if v.startswith("!")]
    missing = []
    for value in additions:
        net = addresses.parse_network(value, "local subnet to add")
        for hole in exclude:
            if hole.version == net.version and hole.overlaps(net):
                raise ConfigError("LocalNetworkSubnets excludes !%s, which overlaps %s: remove that exclusion to make %s local"
                                  % (hole, value, value))
        if not any(net.version == inc.version and net.subnet_of(inc) for inc in include) and str(net) not in missing:
            missing.append(str(net))
    return base + missing if missing else list(current)


def render(root):
    """The document as Jellyfin writes it: XML declaration, two-space indentation."""
    _indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _indent(element, level=0):
    # ET.indent() exists only from Python 3.9; hosts may run older ones.
    pad = "\n" + "  " * level
    if len(element):
        if not (element.text or "").strip():
            element.text = pad + "  "
        for child in element:
            _indent(child, level + 1)
        if not (child.tail or "").strip():
            child.tail = pad
    if level and not (element.tail or "").strip():
        element.tail = pad
