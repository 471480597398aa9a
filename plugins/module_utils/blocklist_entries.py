# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block list text to a minimal list of networks: parse, validate, collapse, exclude.

Addresses are handled as integer ranges, not ipaddress objects: a 100,000-line list is parsed, merged
and cut around the exclusions in a fraction of the time the kernel takes to load it (docs/performance.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import ipaddress
import re
import socket

FAMILIES = {"v4": (socket.AF_INET, 32), "v6": (socket.AF_INET6, 128)}
# Entries broader than this are refused: a /0 (or a /1) in a list would block the internet.
MIN_PREFIX = {"v4": 8, "v6": 16}
# A source is refused when more of its lines than this are not addresses: an error page, not a list.
MAX_INVALID_RATIO = 0.1
HTML = re.compile(r"<\s*(!doctype|html|head|body|title|\?xml)", re.I)
DEFAULT_EXCLUDES = {
    "private": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"],
    "loopback": ["127.0.0.0/8", "::1/128"],
    "link_local": ["169.254.0.0/16", "fe80::/10"],
}


class ListError(ValueError):
    """A source that is not a usable block list; the message says why."""


class TooBroad(ValueError):
    """An address entry broader than MIN_PREFIX: refused, but no sign of a broken list."""


def _address(text, family):
    af, bits = FAMILIES[family]
    return int.from_bytes(socket.inet_pton(af, text), "big"), bits


def parse_entry(token, bounded=True):
    """('v4' or 'v6', start, end) for an address, CIDR or range a-b; ValueError when it is none.

    `bounded` refuses entries broader than MIN_PREFIX (list entries; not exclusions or kernel listings).
    """
    family = "v6" if ":" in token else "v4"
    if "-" in token:
        first, last = token.split("-", 1)
        start, bits = _address(first, family)
        end = _address(last, family)[0]
        if end < start:
            raise ValueError(token)
        prefix = bits - (end - start + 1).bit_length() + 1
    elif "/" in token:
        addr, length = token.split("/", 1)
        start, bits = _address(addr, family)
        if not length.isdigit() or int(length) > bits:
            raise ValueError(token)
        prefix = int(length)
        start &= ~((1 << (bits - prefix)) - 1)
        end = start | ((1 << (bits - prefix)) - 1)
    else:
        start, bits = _address(token, family)
        prefix, end = bits, start
    if family == "v6" and start >> 32 == 0xffff:
        mapped = str(ipaddress.IPv6Address(start).ipv4_mapped) + ("/%d" % (prefix - 96) if prefix < 128 else "")
        return parse_entry(mapped, bounded)
    if bounded and prefix < MIN_PREFIX[family]:
        raise TooBroad(token)
    return family, start, end


def parse(text, source="list"):
    """Parse FireHOL netset, Spamhaus DROP or address-per-line text into {'v4': [(start, end)], 'v6': [...]}.

    Returns (ranges, invalid lines); raises ListError for a body that is not a list at all.
    """
    if not text.strip():
        raise ListError("%s is empty" % source)
    if HTML.search(text[:4096]):
        raise ListError("%s is an HTML page, not an address list" % source)
    ranges = {"v4": [], "v6": []}
    v4 = ranges["v4"]
    invalid, malformed, lines = [], 0, 0
    pton, af_inet, from_bytes = socket.inet_pton, socket.AF_INET, int.from_bytes
    for line in text.splitlines():
        # '#' comments (FireHOL) and '; SBL...' remarks (Spamhaus); the first word is the entry.
        words = line.split(None, 1)
        if not words or words[0][0] in "#;":
            continue
        token = words[0]
        if "#" in token or ";" in token:
            token = token.split("#", 1)[0].split(";", 1)[0]
            if not token:
                continue
        lines += 1
        # The common case inline (an IPv4 CIDR or address); everything else through parse_entry.
        address, _slash, length = token.partition("/")
        if ":" not in address and "-" not in address and (not length or length.isdigit() and MIN_PREFIX["v4"] <= int(length) <= 32):
            try:
                start = from_bytes(pton(af_inet, address), "big")
            except OSError:
                invalid.append(token[:60])
                malformed += 1
                continue
            host = (1 << (32 - int(length))) - 1 if length else 0
            start &= ~host
            v4.append((start, start | host))
            continue
        try:
            family, start, end = parse_entry(token)
        except TooBroad:
            invalid.append(token)
            continue
        except (ValueError, OSError):
            invalid.append(token[:60])
            malformed += 1
            continue
        ranges[family].append((start, end))
    if not ranges["v4"] and not ranges["v6"]:
        raise ListError("%s has no address in %d lines (first: %s)" % (source, lines, ", ".join(invalid[:3])))
    if malformed > MAX_INVALID_RATIO * lines:
        raise ListError("%s is not an address list: %d of %d lines are not addresses (%s, ...)"
                        % (source, malformed, lines, ", ".join(invalid[:3])))
    return ranges, invalid


def merge(ranges):
    """Sorted, non-overlapping, non-adjacent ranges."""
    merged = []
    ordered = sorted(ranges)
    if not ordered:
        return merged
    cur_start, cur_end = ordered[0]
    for start, end in ordered:
        if start <= cur_end + 1:
            if end > cur_end:
                cur_end = end
        else:
            merged.append((cur_start, cur_end))
            cur_start, cur_end = start, end
    merged.append((cur_start, cur_end))
    return merged


def subtract(ranges, holes):
    """Merged ranges minus merged holes (both sorted). Only the ranges a hole touches are looked at."""
    if not holes:
        return ranges
    ranges = list(ranges)
    result, index, count = [], 0, len(ranges)
    for hole_start, hole_end in holes:
        stop = bisect.bisect_left(ranges, (hole_start,), index)
        if stop > index and ranges[stop - 1][1] >= hole_start:
            stop -= 1
        result.extend(ranges[index:stop])
        index = stop
        while index < count and ranges[index][0] <= hole_end:
            start, end = ranges[index]
            if start < hole_start:
                result.append((start, hole_start - 1))
            if end > hole_end:
                # The rest may meet the next hole: it stays in play.
                ranges[index] = (hole_end + 1, end)
                break
            index += 1
    result.extend(ranges[index:])
    return result


def to_cidrs(ranges, family):
    """Ranges as CIDR strings in the kernel's own spelling (a host as a bare address)."""
    af, bits = FAMILIES[family]
    width = bits // 8
    ntop = socket.inet_ntop
    out = []
    append = out.append
    for start, end in ranges:
        size = end - start + 1
        if not size & (size - 1) and not start & (size - 1):
            # Already one CIDR: most block list entries.
            text = ntop(af, start.to_bytes(width, "big"))
            append(text if size == 1 else "%s/%d" % (text, bits + 1 - size.bit_length()))
            continue
        while start <= end:
            size = min((start & -start).bit_length() - 1 if start else bits, (end - start + 1).bit_length() - 1)
            text = ntop(af, start.to_bytes(width, "big"))
            append(text if size == 0 else "%s/%d" % (text, bits - size))
            start += 1 << size
    return out


def exclusions(networks, family):
    """Merged ranges of the excluded networks of one family; ValueError names a bad one."""
    holes = []
    for value in networks:
        try:
            hole_family, start, end = parse_entry(str(value).strip(), bounded=False)
        except (ValueError, OSError):
            raise ValueError("exclude entry %r is not an address, CIDR or range" % (value,))
        if hole_family == family:
            holes.append((start, end))
    return merge(holes)


def build(texts, exclude=(), families=("v4", "v6")):
    """{'v4': [cidr, ...], 'v6': [...]} from parsed ranges of every source, minus the exclusions."""
    result = {}
    for family in FAMILIES:
        if family not in families:
            result[family] = []
            continue
        ranges = merge(r for ranges in texts for r in ranges[family])
        result[family] = to_cidrs(subtract(ranges, exclusions(exclude, family)), family)
    return result


def normalize(elements, family):
    """Kernel set elements (CIDR, address or range, split or merged its own way) as our CIDR list."""
    return to_cidrs(merge(parse_entry(e, bounded=False)[1:] for e in elements), family)
