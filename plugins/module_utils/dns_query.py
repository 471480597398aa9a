# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small DNS client for A and AAAA questions asked straight to a given server (no cache in between).

Only the standard library: the host-side allowlist job runs this without Ansible or dnspython.
A failure is a DnsFailure naming the server and why (timeout, SERVFAIL, NXDOMAIN, REFUSED, a broken
answer); an answer with no record of the type asked (NODATA) is an empty list, not a failure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import struct
import time

TYPES = {"A": (1, socket.AF_INET, 4), "AAAA": (28, socket.AF_INET6, 16)}
RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
MAX_POINTERS = 64


class DnsFailure(RuntimeError):
    """The server gave no usable answer; the message names the question, the server and the reason."""


def encode_name(name):
    labels = name.rstrip(".").split(".")
    return b"".join(struct.pack("!B", len(label)) + label.encode("ascii") for label in labels) + b"\0"


def build_query(name, rrtype, query_id):
    # Flags 0x0100: a standard query asking for recursion.
    return struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", TYPES[rrtype][0], 1)


def _skip_name(data, offset):
    """Offset just past a (possibly compressed) name; pointers end it."""
    for _hop in range(MAX_POINTERS):
        if offset >= len(data):
            raise ValueError("name runs past the end of the message")
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length
    raise ValueError("name with too many labels")


def parse_response(data, query_id, rrtype):
    """(rcode, truncated, addresses) of an answer to build_query(..., query_id)."""
    if len(data) < 12:
        raise ValueError("answer shorter than a DNS header")
    answer_id, flags, qdcount, ancount = struct.unpack("!HHHH", data[:8])
    if answer_id != query_id or not flags & 0x8000:
        raise ValueError("not the answer to this question")
    rcode, truncated = flags & 0x000F, bool(flags & 0x0200)
    offset = 12
    for _question in range(qdcount):
        offset = _skip_name(data, offset) + 4
        if offset > len(data):
            raise ValueError("question runs past the end of the message")
    wanted_type, family, size = TYPES[rrtype]
    addresses = []
    for _record in range(ancount):
        offset = _skip_name(data, offset)
        if offset + 10 > len(data):
            raise ValueError("record runs past the end of the message")
        rr_type, rr_class, _ttl, length = struct.unpack("!HHIH", data[offset:offset + 10])
        offset += 10
        rdata = data[offset:offset + length]
        offset += length
        if len(rdata) != length:
            raise ValueError("record data runs past the end of the message")
        # CNAME records of the chain are skipped; the addresses at its end are what was asked for.
        if rr_type == wanted_type and rr_class == 1 and length == size:
            addresses.append(socket.inet_ntop(family, rdata))
    return rcode, truncated, sorted(set(addresses))


def _exchange_udp(query, server, port, deadline):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((server, port))
        sock.send(query)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            sock.settimeout(left)
            data = sock.recv(65535)
            # Ignore stray datagrams (an answer to an earlier try): only our id counts.
            if data[:2] == query[:2]:
                return data


def _exchange_tcp(query, server, port, deadline):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        sock.connect((server, port))
        sock.sendall(struct.pack("!H", len(query)) + query)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = sock.recv(65535)
            if not chunk:
                raise ValueError("connection closed before the whole answer")
            data += chunk
        return data[2:2 + struct.unpack("!H", data[:2])[0]]


def query(name, rrtype, server, port=53, timeout=5.0, tries=2):
    """The addresses of one type for `name`, asked of `server` directly; DnsFailure when it gives no answer."""
    where = "%s type %s at %s port %d" % (name, rrtype, server, port)
    last = "no answer"
    for _try in range(tries):
        query_id = struct.unpack("!H", os.urandom(2))[0]
        message = build_query(name, rrtype, query_id)
        deadline = time.monotonic() + timeout
        try:
            rcode, truncated, addresses = parse_response(_exchange_udp(message, server, port, deadline), query_id, rrtype)
            if truncated:
                rcode, truncated, addresses = parse_response(_exchange_tcp(message, server, port, deadline), query_id, rrtype)
        except socket.timeout:
            last = "timed out after %s s" % timeout
            continue
        except (OSError, ValueError) as err:
            last = str(err)
            continue
        if rcode == 0:
            return addresses
        raise DnsFailure("%s: %s" % (where, RCODES.get(rcode, "rcode %d" % rcode)))
    raise DnsFailure("%s: %s" % (where, last))
