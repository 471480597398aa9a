"""Block list parsing, collapsing and exclusion, checked against Python's ipaddress as the reference."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import random

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist_entries as be

FIREHOL = """#
# firehol_level1
#
# Maintainer      : FireHOL
# This File Date  : Sat Nov 28 10:00:00 UTC 2026
0.0.0.0/8
1.10.16.0/20
1.19.0.0/16
10.0.0.0/8
223.254.0.0/16
224.0.0.0/3
"""
SPAMHAUS = """; Spamhaus DROP List 2026/11/28 - (c) 2026 The Spamhaus Project SLU
; Last-Modified: Sat, 28 Nov 2026 08:00:00 GMT
1.10.16.0/20 ; SBL256894
2.56.192.0/22 ; SBL459831
"""


def test_firehol_netset_parses_and_refuses_the_over_broad_entry():
    ranges, invalid = be.parse(FIREHOL, "firehol")
    assert invalid == ["224.0.0.0/3"]
    assert len(ranges["v4"]) == 5 and ranges["v6"] == []


def test_two_sources_merge_and_exclusions_cut_holes():
    lists = [be.parse(FIREHOL)[0], be.parse(SPAMHAUS)[0]]
    result = be.build(lists, be.DEFAULT_EXCLUDES["private"] + ["1.19.128.0/17"])
    assert result["v4"] == ["0.0.0.0/8", "1.10.16.0/20", "1.19.0.0/17", "2.56.192.0/22", "223.254.0.0/16"]


def test_plain_lists_with_addresses_ranges_ipv6_and_mapped_addresses():
    text = "192.0.2.7\n192.0.2.8  # a comment\n198.51.100.0-198.51.100.255\n2001:db8::/48\n::ffff:203.0.113.9\n\n"
    ranges, invalid = be.parse(text)
    assert not invalid
    result = be.build([ranges])
    assert result == {"v4": ["192.0.2.7", "192.0.2.8", "198.51.100.0/24", "203.0.113.9"], "v6": ["2001:db8::/48"]}


@pytest.mark.parametrize("body, message", [
    ("", "is empty"),
    ("   \n\n", "is empty"),
    ("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML page"),
    ("<html>\n<head><title>Just a moment...</title></head>", "HTML page"),
    ("# only comments\n# here\n", "no address"),
    ("\n".join(["garbage line %d" % i for i in range(20)] + ["192.0.2.1"]), "not an address list"),
    ("0.0.0.0/0\n::/0\n", "no address"),
])
def test_bodies_that_are_not_lists_are_refused(body, message):
    with pytest.raises(be.ListError, match=message):
        be.parse(body, "http://lab/list")


def test_few_bad_lines_are_counted_not_fatal():
    text = "\n".join("198.51.%d.0/24" % i for i in range(40)) + "\n999.1.1.1\n10.0.0.0/33\n1.2.3.4-1.2.3.1\n"
    ranges, invalid = be.parse(text)
    assert invalid == ["999.1.1.1", "10.0.0.0/33", "1.2.3.4-1.2.3.1"]
    assert be.build([ranges])["v4"] == ["198.51.0.0/19", "198.51.32.0/21"]


def test_host_bits_are_masked_like_the_kernel_does():
    assert be.build([be.parse("192.0.2.77/24\n")[0]])["v4"] == ["192.0.2.0/24"]


def test_random_lists_match_ipaddress_collapse_and_exclude():
    rng = random.Random(7)
    nets = set()
    for _entry in range(3000):
        prefix = rng.choice([8, 12, 16, 20, 24, 28, 30, 31, 32])
        nets.add(ipaddress.ip_network((rng.randrange(1 << 32) >> (32 - prefix) << (32 - prefix), prefix)))
    holes = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("%s/12" % ipaddress.IPv4Address(rng.randrange(1 << 32) & ~0xfffff))]
    ours = be.build([be.parse("\n".join(map(str, nets)))[0]], [str(h) for h in holes])["v4"]
    expected = list(ipaddress.collapse_addresses(nets))
    for hole in holes:
        expected = [piece for net in expected
                    for piece in ([] if net.subnet_of(hole) else net.address_exclude(hole) if hole.subnet_of(net) else [net])]
    expected = list(ipaddress.collapse_addresses(expected))
    spelled = [str(n.network_address) if n.prefixlen == 32 else str(n) for n in expected]
    assert ours == spelled


def test_kernel_listings_normalize_to_the_same_cidrs():
    assert be.normalize(["1.0.0.0-1.0.2.255", "9.9.9.9", "12.0.0.0/7"], "v4") == ["1.0.0.0/23", "1.0.2.0/24", "9.9.9.9", "12.0.0.0/7"]


def test_bad_exclusion_is_named():
    with pytest.raises(ValueError, match="'192.0.2.300'"):
        be.exclusions(["192.0.2.300"], "v4")


@pytest.mark.parametrize("ranges, holes, expected", [
    ([(0, 100)], [(10, 20), (30, 40)], [(0, 9), (21, 29), (41, 100)]),
    ([(0, 5), (10, 20), (30, 40)], [(3, 12), (15, 35)], [(0, 2), (13, 14), (36, 40)]),
    ([(10, 20)], [(0, 9), (21, 30)], [(10, 20)]),
    ([(10, 20)], [(0, 30)], []),
    ([(10, 20), (22, 30)], [(20, 22)], [(10, 19), (23, 30)]),
])
def test_subtract_edges(ranges, holes, expected):
    assert be.subtract(ranges, holes) == expected
