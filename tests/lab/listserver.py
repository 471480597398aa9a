"""The lab's block list server: writes list bodies for the tests and serves them over HTTP (no internet).

    listserver write NAME [--entries N] [--seed S] [--include ADDR ...] [--body list|html|empty|half]
    listserver serve DIR PORT

A list is N /24 networks that never merge (a FireHOL-like header, then one CIDR per line) plus the
--include addresses; --seed shifts the networks, so two seeds give two different lists of the same size.
--body html|empty|half writes what a broken server or a cut download returns instead.
"""
import argparse
import http.server
import os
import sys

ROOT = "/srv/lists"


def networks(count, seed):
    # 11.0.0.0 upwards, every other /24: the lab never routes there and nothing collapses.
    first = (11 << 24) + (seed % 2) * 256
    return ["%d.%d.%d.0/24" % ((a >> 24) & 255, (a >> 16) & 255, (a >> 8) & 255)
            for a in (first + i * 512 for i in range(count))]


def body(args):
    if args.body == "html":
        return "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n"
    if args.body == "empty":
        return ""
    lines = ["# lab list %s, seed %d" % (args.name, args.seed), "#"] + networks(args.entries, args.seed) + args.include
    text = "\n".join(lines) + "\n"
    # A download cut off half way, mid-line.
    return text[:len(text) // 2] if args.body == "half" else text


def main(argv):
    parser = argparse.ArgumentParser(prog="listserver")
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write")
    write.add_argument("name")
    write.add_argument("--entries", type=int, default=4500)
    write.add_argument("--seed", type=int, default=0)
    write.add_argument("--include", nargs="*", default=[])
    write.add_argument("--body", choices=["list", "html", "empty", "half"], default="list")
    serve = sub.add_parser("serve")
    serve.add_argument("dir")
    serve.add_argument("port", type=int)
    args = parser.parse_args(argv[1:])
    if args.command == "serve":
        os.chdir(args.dir)
        http.server.ThreadingHTTPServer(("", args.port), http.server.SimpleHTTPRequestHandler).serve_forever()
    os.makedirs(ROOT, exist_ok=True)
    tmp = os.path.join(ROOT, ".%s.tmp" % args.name)
    with open(tmp, "w") as handle:
        handle.write(body(args))
    os.replace(tmp, os.path.join(ROOT, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
