#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: jellyfin_version
short_description: Report Jellyfin's installed and candidate versions against a security floor
version_added: 0.1.0
description:
  - Sets the fact C(jellyfin_version) - the installed version, the candidate the apt repository offers, the
    version the running server reports, and whether the installed version is below O(floor).
  - Warns in the play when it is below the floor. Jellyfin's security releases since 2023 make anything below
    10.11.10 urgent (the default floor).
  - Reads only; it never runs C(apt-get update), so the candidate is as fresh as the host's package lists.
author:
  - homelab.jellyfin_hardening maintainers (@homelab)
options:
  install:
    description:
      - C(native) reads the Debian packages with dpkg and apt. C(docker) has no package, so the installed
        version is what the running server reports on C(/System/Info/Public).
    type: str
    choices: [native, docker]
    default: native
  packages:
    description: Jellyfin's packages; the first installed one of them gives the installed version.
    type: list
    elements: str
    default: [jellyfin-server, jellyfin]
  url:
    description: Jellyfin's address on the host, for C(/System/Info/Public).
    type: str
    default: http://127.0.0.1:8096
  floor:
    description: The lowest version without known security holes, as C(MAJOR.MINOR.PATCH).
    type: str
    default: 10.11.10
  timeout:
    description: Seconds to wait for C(/System/Info/Public).
    type: int
    default: 5
extends_documentation_fragment:
  - homelab.jellyfin_hardening.attributes.read_only
attributes:
  facts:
    description: Sets C(jellyfin_version).
    support: full
"""

EXAMPLES = r"""
- name: Read Jellyfin's version
  homelab.jellyfin_hardening.jellyfin_version:
    floor: 10.11.10

- name: Fail the play on an unpatched server
  ansible.builtin.assert:
    that: not jellyfin_version.below_floor
    fail_msg: Jellyfin {{ jellyfin_version.installed }} is below {{ jellyfin_version.floor }}
"""

RETURN = r"""
ansible_facts:
  description: The fact C(jellyfin_version).
  returned: always
  type: dict
  contains:
    jellyfin_version:
      description: Jellyfin's versions on this host.
      type: dict
      returned: always
      contains:
        installed:
          description: The installed upstream version (C(10.11.11)), or null when none was found.
          type: str
          sample: 10.11.11
        installed_package:
          description: The installed package version (C(10.11.11+deb13)); null for C(docker).
          type: str
          sample: 10.11.11+deb13
        candidate:
          description: The upstream version apt would install now; null for C(docker) or without a candidate.
          type: str
          sample: 10.11.11
        server:
          description: What the running server reports on C(/System/Info/Public), or null when it did not answer.
          type: str
          sample: 10.11.11
        floor:
          description: The floor compared against.
          type: str
          sample: 10.11.10
        below_floor:
          description: True when the installed version is known and below the floor.
          type: bool
          sample: false
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import jellyfin_patching


def main():
    module = AnsibleModule(
        argument_spec=dict(
            install=dict(type="str", choices=["native", "docker"], default="native"),
            packages=dict(type="list", elements="str", default=["jellyfin-server", "jellyfin"]),
            url=dict(type="str", default="http://127.0.0.1:8096"),
            floor=dict(type="str", default="10.11.10"),
            timeout=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not jellyfin_patching.valid_floor(params["floor"]):
        module.fail_json(msg="floor %r is not a version like 10.11.10" % params["floor"])
    if not params["url"].startswith(("http://", "https://")):
        module.fail_json(msg="url %r is not an http:// or https:// address" % params["url"])
    if params["timeout"] < 1:
        module.fail_json(msg="timeout %d must be at least 1 second" % params["timeout"])
    host = jellyfin_patching.Host()
    server = jellyfin_patching.server_version(host, params["url"], params["timeout"])
    package_version = candidate = None
    if params["install"] == "native":
        installed = jellyfin_patching.dpkg_installed(host, params["packages"])
        package = next((name for name in params["packages"] if name in installed), None)
        if package:
            package_version = installed[package]
            candidate = jellyfin_patching.upstream(jellyfin_patching.apt_candidate(host, package))
        installed_version = jellyfin_patching.upstream(package_version)
    else:
        installed_version = jellyfin_patching.upstream(server)
    fact = {
        "installed": installed_version,
        "installed_package": package_version,
        "candidate": candidate,
        "server": server,
        "floor": params["floor"],
        "below_floor": jellyfin_patching.below(installed_version, params["floor"]),
    }
    if fact["below_floor"]:
        module.warn("Jellyfin %s is below the security floor %s: upgrade now%s" % (
            installed_version, params["floor"], " (apt offers %s)" % candidate if candidate else ""))
    elif installed_version is None:
        module.warn("no installed Jellyfin version found (%s): cannot compare it with the floor %s" % (
            "packages " + ", ".join(params["packages"]) if params["install"] == "native" else params["url"], params["floor"]))
    module.exit_json(changed=False, ansible_facts={"jellyfin_version": fact})


if __name__ == "__main__":
    main()
