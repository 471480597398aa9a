"""Helpers the scenarios' testinfra tests share: a lab host's address, and whether a client gets through."""

import re

_ADDRESSES = {}


def addr(host):
    """The lab host's IPv4 address on the scenario network (eth0), read once."""
    if host not in _ADDRESSES:
        out = host.check_output("ip -4 -o addr show dev eth0")
        _ADDRESSES[host] = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out).group(1)
    return _ADDRESSES[host]


def tcp_open(client, target, port, timeout=2):
    """True when `client` completes a TCP handshake with `target` on `port` within `timeout` seconds."""
    code = ("import socket,sys; s=socket.socket(); s.settimeout(%s); "
            "sys.exit(0 if s.connect_ex(('%s', %d)) == 0 else 1)") % (timeout, addr(target), port)
    return client.run("python3 -c \"%s\"" % code).rc == 0


def forget(host):
    """Read the address again next time (after the container restarted and may have a new one)."""
    _ADDRESSES.pop(host, None)
