#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ddns_allowlist
short_description: Allow only the addresses of known people's dynamic DNS names (and fixed networks) to reach Jellyfin
version_added: 0.1.0
description:
  - Resolves every name in O(hostnames) concurrently (A and AAAA, every record), adds the O(static) networks, and brings the
    firewall's allowlist to exactly that, changing only the difference.
  - What is in force is read from the firewall itself, never from the state file. With O(backend=nftables) or O(backend=ipset)
    the allowlist is the firewall-model set pair the ddns_allowlist role declares (C(SET_NAME_v4) and C(SET_NAME_v6) in the table
    C(inet jellyfin_hardening), or the ipsets C(jfh_SET_NAME_v4) and C(jfh_SET_NAME_v6)), replaced in one atomic step; with
    O(backend=ufw) it is one C(allow from ADDR to any port P proto PROTO) rule per address and port with the comment O(set_name),
    inserted before every other rule, and a C(deny) rule per port after them, so nobody else reaches the ports.
  - A name that fails to resolve (timeout, SERVFAIL, NXDOMAIN) keeps the addresses of its last answer for O(keep_unresolved_for)
    seconds, so a resolver outage never locks anyone out. A name that fails with nothing known about it (a new name during an
    outage, a lost state file) holds every removal until it resolves, for at most O(keep_unresolved_for) seconds.
  - The host-side job the ddns_allowlist role installs (systemd timer or cron) runs this same code.
author:
  - homelab.jellyfin_hardening maintainers (@homelab)
options:
  hostnames:
    description: DNS names whose addresses are allowed. At least one of O(hostnames) and O(static) is required.
    type: list
    elements: str
    default: []
  static:
    description: Addresses or CIDRs always allowed (the LAN, a friend with a fixed address).
    type: list
    elements: str
    default: []
  ports:
    description:
      - Ports the allowlist opens (C(ufw) only). With C(nftables) and C(ipset) the firewall model's Jellyfin ports apply
        (C(firewall_jellyfin_ports)).
    type: list
    elements: int
    default: [8096]
  protocol:
    description: Protocol of the ufw rules.
    type: str
    choices: [tcp, udp]
    default: tcp
  backend:
    description: Where the allowlist lives.
    type: str
    choices: [nftables, ipset, ufw]
    default: nftables
  set_name:
    description: Name of the allowlist's set pair, or the comment of its ufw rules; 1-24 lowercase letters, digits or C(_).
    type: str
    default: jellyfin_allow
  nameservers:
    description:
      - Ask these servers directly (C(addr), C(addr:port) or C([v6addr]:port)), in order until one answers, instead of the
        system resolver. Bypasses every cache, so a changed record is seen at once.
    type: list
    elements: str
    default: []
  keep_unresolved_for:
    description: Seconds a name that fails to resolve keeps its last known addresses.
    type: int
    default: 86400
  timeout:
    description: Seconds to wait for each DNS answer (asked twice per server). The system resolver uses its own settings.
    type: int
    default: 5
  state_file:
    description: The last answer per name with its time (JSON, mode 0600). Default C(/var/lib/jellyfin-hardening/SET_NAME.json).
    type: path
  state:
    description: C(absent) empties the sets, or removes every ufw rule with the O(set_name) comment, and the state file.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Resolves the names and reports what would change; changes neither the firewall nor the state file.
    support: full
  diff_mode:
    description: Shows the allowlist in force and the one wanted.
    support: full
notes:
  - Runs take a lock, so the timer, cron and Ansible never interleave; a run waits at most 300 s for it.
  - With O(backend=ufw) the module fails, before changing anything, when ufw is inactive or when another ufw rule already lets
    everyone reach one of the O(ports).
  - ufw does not see Docker-published ports (Docker's DNAT sends them through FORWARD); use C(nftables) or C(ipset) there.
seealso:
  - name: docs/firewall.md
    description: The firewall model; the allowlist is its restriction stage.
    link: https://github.com/homelab/jellyfin_hardening/blob/main/docs/firewall.md
"""

EXAMPLES = r"""
- name: Let only friends and the LAN reach Jellyfin (the set pair comes from the ddns_allowlist role)
  homelab.jellyfin_hardening.ddns_allowlist:
    hostnames: [alice.duckdns.org, bob.example.net]
    static: [192.168.1.0/24]

- name: The same with ufw, asking the DDNS provider's name servers directly
  homelab.jellyfin_hardening.ddns_allowlist:
    hostnames: [alice.duckdns.org]
    backend: ufw
    ports: [8096, 8920]
    nameservers: [99.79.143.35, "[2600:1f18:4c4:4f00::1]:53"]
"""

RETURN = r"""
allowed:
  description: Every network allowed after the run (or in check mode, that would be), IPv4 first, each sorted.
  returned: always
  type: list
  elements: str
  sample: [192.168.1.0/24, 198.51.100.7, 2001:db8::7]
added:
  description: Networks added to the firewall.
  returned: always
  type: list
  elements: str
  sample: [198.51.100.7]
removed:
  description: Networks removed from the firewall.
  returned: always
  type: list
  elements: str
  sample: [198.51.100.3]
unresolved:
  description: Names that got no answer for either address family this run.
  returned: always
  type: list
  elements: str
  sample: [bob.example.net]
kept:
  description: Per name, the addresses kept from the state file because the name did not resolve.
  returned: always
  type: dict
  sample: {bob.example.net: [203.0.113.9]}
resolver_errors:
  description: Each failed question, with the server and the reason.
  returned: always
  type: list
  elements: str
  sample: ["bob.example.net type A at 192.0.2.53 port 53: SERVFAIL"]
commands:
  description: The ufw commands run (empty for the set backends and in check mode).
  returned: always
  type: list
  elements: str
  sample: ["ufw prepend allow from 198.51.100.7 to any port 8096 proto tcp comment jellyfin_allow"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import ddns_allowlist

SETTINGS = ("hostnames", "static", "ports", "protocol", "backend", "set_name", "nameservers", "keep_unresolved_for",
            "timeout", "state_file", "state")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            hostnames=dict(type="list", elements="str", default=[]),
            static=dict(type="list", elements="str", default=[]),
            ports=dict(type="list", elements="int", default=[8096]),
            protocol=dict(type="str", choices=["tcp", "udp"], default="tcp"),
            backend=dict(type="str", choices=list(ddns_allowlist.BACKENDS), default="nftables"),
            set_name=dict(type="str", default="jellyfin_allow"),
            nameservers=dict(type="list", elements="str", default=[]),
            keep_unresolved_for=dict(type="int", default=86400),
            timeout=dict(type="int", default=5),
            state_file=dict(type="path"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    config = {key: module.params[key] for key in SETTINGS}
    try:
        result = ddns_allowlist.apply(config, check_mode=module.check_mode, want_diff=module._diff)
    except ddns_allowlist.AllowlistError as err:
        module.fail_json(msg=str(err))
    for warning in result.pop("warnings"):
        module.warn(warning)
    if result["unresolved"]:
        module.warn("did not resolve: %s; kept from the last answers: %s" % (", ".join(result["unresolved"]), result["kept"] or "nothing"))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
