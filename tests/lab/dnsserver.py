"""The lab's DNS server: answers A and AAAA questions from a zone file the tests rewrite (no internet).

    dnsserver serve ZONE_FILE [--address 0.0.0.0] [--port 53] [--delay SECONDS] [--suffix ddns.test]
    dnsserver set ZONE_FILE NAME [ADDR ...]        (no ADDR: the name is removed, NXDOMAIN)

The zone file is JSON, {"name": ["addr", ...]}, read again whenever it changes. A name with no address
of the type asked gets NOERROR with no answer (NODATA), an unknown name NXDOMAIN, a name whose value is
"SERVFAIL" a SERVFAIL. With --suffix, a name outside that domain gets REFUSED, so a resolver
that lists this server first moves on to the next one. --delay answers every question that much
later (each in its own thread), as a slow resolver would. UDP only; answers always fit.
"""
import argparse
import ipaddress
import json
import os
import socket
import struct
import sys
import threading
import time

TYPES = {1: (4, socket.AF_INET), 28: (6, socket.AF_INET6)}


class Zone(object):
    def __init__(self, path):
        self.path, self.mtime, self.records, self.lock = path, None, {}, threading.Lock()

    def get(self):
        with self.lock:
            try:
                mtime = os.stat(self.path).st_mtime_ns
                if mtime != self.mtime:
                    with open(self.path) as handle:
                        self.records = {k.lower().rstrip("."): v for k, v in json.load(handle).items()}
                    self.mtime = mtime
            except (OSError, ValueError) as err:
                sys.stderr.write("zone %s: %s\n" % (self.path, err))
            return self.records


def read_question(data):
    offset, labels = 12, []
    while data[offset]:
        length = data[offset]
        labels.append(data[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, qclass = struct.unpack("!HH", data[offset + 1:offset + 5])
    return ".".join(labels).lower(), qtype, qclass, data[12:offset + 5]


def answer(data, zone, suffix=None):
    query_id, _flags = struct.unpack("!HH", data[:4])
    name, qtype, _qclass, question = read_question(data)
    records = zone.get()
    value = records.get(name)
    rcode, rrs = 0, []
    if suffix and not (name == suffix or name.endswith("." + suffix)):
        rcode = 5
    elif value is None:
        rcode = 3
    elif value == "SERVFAIL":
        rcode = 2
    elif qtype in TYPES:
        version, family = TYPES[qtype]
        for text in value:
            if ipaddress.ip_address(text).version == version:
                rdata = socket.inet_pton(family, text)
                # The owner name as a pointer to the question (offset 12).
                rrs.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, 30, len(rdata)) + rdata)
    header = struct.pack("!HHHHHH", query_id, 0x8180 | rcode, 1, len(rrs), 0, 0)
    return header + question + b"".join(rrs)


def serve(args):
    zone = Zone(args.zone)
    family = socket.AF_INET6 if ":" in args.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((args.address, args.port))

    def reply(data, peer):
        if args.delay:
            time.sleep(args.delay)
        try:
            sock.sendto(answer(data, zone, args.suffix), peer)
        except (ValueError, IndexError, struct.error, OSError) as err:
            sys.stderr.write("bad question from %s: %s\n" % (peer[0], err))

    while True:
        data, peer = sock.recvfrom(4096)
        threading.Thread(target=reply, args=(data, peer), daemon=True).start()


def set_name(args):
    try:
        with open(args.zone) as handle:
            records = json.load(handle)
    except (OSError, ValueError):
        records = {}
    if args.addresses:
        records[args.name] = args.addresses if args.addresses != ["SERVFAIL"] else "SERVFAIL"
    else:
        records.pop(args.name, None)
    tmp = args.zone + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(records, handle, indent=1, sort_keys=True)
    os.replace(tmp, args.zone)


def main(argv):
    parser = argparse.ArgumentParser(prog="dnsserver")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve")
    run.add_argument("zone")
    run.add_argument("--address", default="0.0.0.0")
    run.add_argument("--port", type=int, default=53)
    run.add_argument("--delay", type=float, default=0.0)
    run.add_argument("--suffix", type=lambda text: text.lower().strip("."))
    change = sub.add_parser("set")
    change.add_argument("zone")
    change.add_argument("name")
    change.add_argument("addresses", nargs="*")
    args = parser.parse_args(argv[1:])
    return serve(args) if args.command == "serve" else set_name(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
