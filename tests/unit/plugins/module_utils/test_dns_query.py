"""The DNS client against the lab's DNS server on loopback, and its parser on crafted messages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import pathlib
import socket
import struct
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import dns_query

DNSSERVER = pathlib.Path(__file__).resolve().parents[3] / "lab" / "dnsserver.py"
LOOPBACK = "127.0.0.1"
ZONE = {
    "many.example.test": ["192.0.2.3", "192.0.2.1", "192.0.2.2", "2001:db8::2", "2001:db8::1", "2001:db8::3"],
    "v4only.example.test": ["198.51.100.7"],
    "broken.example.test": "SERVFAIL",
    "ready.example.test": ["203.0.113.1"],
}


def free_udp_port():
    """A UDP port nobody listens on (as long as nobody binds it in between)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture(name="server", scope="module")
def fixture_server(tmp_path_factory):
    """The lab dnsserver serving ZONE on a free loopback port: (address, port)."""
    directory = tmp_path_factory.mktemp("dns")
    zone = directory / "zone.json"
    zone.write_text(json.dumps(ZONE))
    port = free_udp_port()
    with open(directory / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(DNSSERVER), "serve", str(zone), "--address", LOOPBACK, "--port", str(port)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError("dnsserver exited with %s: %s" % (proc.returncode, (directory / "server.log").read_text()))
            try:
                dns_query.query("ready.example.test", "A", LOOPBACK, port, timeout=1, tries=1)
                break
            except dns_query.DnsFailure:
                if time.monotonic() > deadline:
                    raise RuntimeError("dnsserver on port %d did not answer within 15 s" % port)
                time.sleep(0.1)
        yield LOOPBACK, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# ---- against the lab server ----------------------------------------------------------------------

def test_a_answer_has_every_record(server):
    assert dns_query.query("many.example.test", "A", *server, timeout=2) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


def test_aaaa_answer_has_every_record(server):
    assert dns_query.query("many.example.test", "AAAA", *server, timeout=2) == ["2001:db8::1", "2001:db8::2", "2001:db8::3"]


def test_name_is_case_insensitive_and_may_end_with_a_dot(server):
    assert dns_query.query("MANY.Example.TEST.", "A", *server, timeout=2) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


def test_nodata_is_an_empty_answer_not_a_failure(server):
    assert dns_query.query("v4only.example.test", "AAAA", *server, timeout=2) == []
    assert dns_query.query("v4only.example.test", "A", *server, timeout=2) == ["198.51.100.7"]


@pytest.mark.parametrize("name, reason", [("missing.example.test", "NXDOMAIN"), ("broken.example.test", "SERVFAIL")])
@pytest.mark.parametrize("rrtype", ["A", "AAAA"])
def test_nxdomain_and_servfail_are_failures_naming_name_server_and_reason(server, name, reason, rrtype):
    address, port = server
    with pytest.raises(dns_query.DnsFailure) as failure:
        dns_query.query(name, rrtype, address, port, timeout=2)
    message = str(failure.value)
    assert name in message and address in message and str(port) in message and reason in message, message
    assert "type %s" % rrtype in message, message


def test_closed_port_is_a_failure():
    port = free_udp_port()
    with pytest.raises(dns_query.DnsFailure) as failure:
        dns_query.query("many.example.test", "A", LOOPBACK, port, timeout=2)
    message = str(failure.value)
    assert "many.example.test" in message and LOOPBACK in message and str(port) in message, message
    assert "refused" in message.lower(), message


def test_server_that_never_answers_times_out():
    # Bound, so no ICMP port unreachable comes back; never read, so no answer either.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        port = silent.getsockname()[1]
        with pytest.raises(dns_query.DnsFailure) as failure:
            dns_query.query("many.example.test", "A", LOOPBACK, port, timeout=1)
    message = str(failure.value)
    assert "timed out" in message and "many.example.test" in message and str(port) in message, message


# ---- parse_response on crafted bytes ---------------------------------------------------------------

def header(query_id, flags=0x8180, qdcount=1, ancount=0):
    return struct.pack("!HHHHHH", query_id, flags, qdcount, ancount, 0, 0)


def record(owner, rrtype, rdata, rrclass=1):
    return owner + struct.pack("!HHIH", rrtype, rrclass, 300, len(rdata)) + rdata


def pointer(offset):
    return struct.pack("!H", 0xC000 | offset)


def a_answer(query_id, addresses=("192.0.2.1", "192.0.2.2")):
    question = dns_query.encode_name("www.example.test") + struct.pack("!HH", 1, 1)
    records = b"".join(record(pointer(12), 1, socket.inet_pton(socket.AF_INET, a)) for a in addresses)
    return header(query_id, ancount=len(addresses)) + question + records


def test_build_query_and_parse_round_trip():
    query = dns_query.build_query("www.example.test", "AAAA", 0x1234)
    assert query[:2] == b"\x12\x34" and query.endswith(struct.pack("!HH", 28, 1))
    assert dns_query.parse_response(a_answer(0x1234), 0x1234, "A") == (0, False, ["192.0.2.1", "192.0.2.2"])


def test_answer_with_another_id_is_rejected():
    with pytest.raises(ValueError, match="not the answer"):
        dns_query.parse_response(a_answer(0x1234), 0x4321, "A")


def test_question_echoed_back_is_not_an_answer():
    # The QR bit clear: a query (or a reflection of ours), not a response.
    with pytest.raises(ValueError, match="not the answer"):
        dns_query.parse_response(header(7, flags=0x0100) + a_answer(7)[12:], 7, "A")


def test_rcode_and_truncation_flag_are_reported():
    assert dns_query.parse_response(header(9, flags=0x8183) + a_answer(9)[12:], 9, "A")[:2] == (3, False)
    assert dns_query.parse_response(header(9, flags=0x8380) + a_answer(9)[12:], 9, "A")[:2] == (0, True)


def test_cname_chain_with_compression_pointers_gives_the_address_at_its_end():
    query_id = 0xBEEF
    # 12: www.example.test (the question); "example.test" starts at 12 + 4 = 16.
    question = dns_query.encode_name("www.example.test") + struct.pack("!HH", 1, 1)
    head_len = 12 + len(question)
    # www.example.test CNAME cdn.example.test: "cdn" then a pointer to "example.test" in the question.
    target1 = b"\x03cdn" + pointer(16)
    rr1 = record(pointer(12), 5, target1)
    target1_at = head_len + 2 + 10  # owner pointer, fixed fields
    # cdn.example.test CNAME edge.cdn.example.test: "edge" then a pointer to the first CNAME's target.
    target2 = b"\x04edge" + pointer(target1_at)
    rr2 = record(pointer(target1_at), 5, target2)
    target2_at = target1_at + len(target1) + 2 + 10
    # edge.cdn.example.test A 203.0.113.9, and records that must be skipped: an AAAA, an A of class CH,
    # an A with a 16-byte rdata.
    rr3 = record(pointer(target2_at), 1, socket.inet_pton(socket.AF_INET, "203.0.113.9"))
    noise = (record(pointer(target2_at), 28, socket.inet_pton(socket.AF_INET6, "2001:db8::9"))
             + record(pointer(target2_at), 1, socket.inet_pton(socket.AF_INET, "203.0.113.66"), rrclass=3)
             + record(pointer(target2_at), 1, socket.inet_pton(socket.AF_INET6, "2001:db8::66")))
    message = header(query_id, ancount=6) + question + rr1 + rr2 + rr3 + noise
    assert dns_query.parse_response(message, query_id, "A") == (0, False, ["203.0.113.9"])
    assert dns_query.parse_response(message, query_id, "AAAA") == (0, False, ["2001:db8::9"])


def test_every_truncation_of_an_answer_raises_valueerror():
    message = a_answer(0x0101)
    for cut in range(len(message)):
        try:
            result = dns_query.parse_response(message[:cut], 0x0101, "A")
        except ValueError:
            continue
        pytest.fail("%d of %d bytes parsed as %r instead of ValueError" % (cut, len(message), result))


def test_every_truncation_of_a_nodata_answer_raises_valueerror():
    # NODATA is an empty answer, and an empty answer replaces a name's addresses: a cut-off NODATA
    # message must not pass for one.
    message = header(0x0202) + dns_query.encode_name("www.example.test") + struct.pack("!HH", 28, 1)
    assert dns_query.parse_response(message, 0x0202, "AAAA") == (0, False, [])
    accepted = []
    for cut in range(len(message)):
        try:
            accepted.append((cut, dns_query.parse_response(message[:cut], 0x0202, "AAAA")))
        except ValueError:
            continue
    assert not accepted, ("a NODATA answer cut inside the question's type/class is accepted as an empty answer "
                          "(cut, result): %r" % (accepted,))


@settings(max_examples=300, deadline=None)
@given(qdcount=st.integers(0, 3), ancount=st.integers(0, 5), body=st.binary(max_size=120))
def test_garbage_after_a_valid_header_is_valueerror_or_an_answer(qdcount, ancount, body):
    try:
        rcode, truncated, addresses = dns_query.parse_response(header(77, qdcount=qdcount, ancount=ancount) + body, 77, "A")
    except ValueError:
        return
    assert rcode == 0 and truncated is False
    assert all(socket.inet_pton(socket.AF_INET, a) for a in addresses)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=11))
def test_shorter_than_a_header_is_valueerror(body):
    with pytest.raises(ValueError):
        dns_query.parse_response(body, 0, "A")
