"""Helpers the scenarios' testinfra tests share: a lab host's address, whether a client gets through, and
systemctl verbs that wait for the units they propagate to."""

import os
import re
import time

import testinfra
import yaml

_ADDRESSES = {}


def connect(name):
    """A testinfra host for the scenario's container `name`, reached with `podman exec`.

    testinfra has no backend for Ansible's podman connection, so `ansible://` hosts run every command
    as an ad-hoc Ansible run: 2.4 s each against 0.16 s for `podman exec` (measured on the lab image).
    The name is checked against Molecule's inventory so a typo fails here, not as an odd podman error.
    """
    with open(os.environ["MOLECULE_INVENTORY_FILE"], encoding="utf-8") as inventory:
        hostvars = _hostvars(yaml.safe_load(inventory) or {})
    if name not in hostvars:
        raise KeyError("no host %r in the Molecule inventory (it has: %s)" % (name, ", ".join(sorted(hostvars))))
    return testinfra.get_host("podman://" + hostvars[name].get("ansible_host", name))


def _hostvars(group):
    """Every host of an inventory group and its children, with its variables."""
    found = {}
    for group_data in (group or {}).values():
        if not isinstance(group_data, dict):
            continue
        for name, variables in (group_data.get("hosts") or {}).items():
            found.setdefault(name, {}).update(variables or {})
        for name, variables in _hostvars(group_data.get("children")).items():
            found.setdefault(name, {}).update(variables)
    return found


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


def systemctl_settled(host, verb, unit, follower, attempts=120):
    """`systemctl VERB UNIT`, then wait until FOLLOWER has finished the job VERB gave it.

    systemctl returns when UNIT's own job is done, not the jobs it propagated (PartOf=,
    ReloadPropagatedFrom=): the collection's firewall unit refills its sets after nftables.service's
    `flush ruleset`, and reading them before that reads them half refilled. The follower's job is
    queued in the same transaction, so an empty Job= with the unit active means it has run.
    """
    host.run_expect([0], "systemctl %s %s" % (verb, unit))
    settled = '[ -z "$(systemctl show --property=Job --value %s)" ] && systemctl is-active --quiet %s' % (follower, follower)
    for _attempt in range(attempts):
        if host.run(settled).rc == 0:
            return
        time.sleep(0.5)
    raise AssertionError("%s did not settle after systemctl %s %s" % (follower, verb, unit))
