# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError

# Jellyfin strips a leading /emby or /mediabrowser before routing, and matches paths in any case:
# a rule that covers /web/ but not /EMBY/Web/ leaves the web UI open.
PREFIX = "^/((emby|mediabrowser)/)?"
PRESETS = {
    # The web client and the API pages; the token API (apps) passes.
    "web_only": PREFIX + "(web(/|$)|api-docs/)",
    # Everything.
    "strict": "^/",
}


def sso_protected_paths(policy, custom=None):
    """The regular expression (RE2 and PCRE alike, to be matched case-insensitively) of the paths behind SSO."""
    if policy in PRESETS:
        return PRESETS[policy]
    if policy != "custom":
        raise AnsibleFilterError("SSO path policy must be one of web_only, strict, custom; got %r" % (policy,))
    if isinstance(custom, str) or not custom:
        raise AnsibleFilterError("the custom SSO path policy needs a list of path expressions, got %r" % (custom,))
    for expression in custom:
        # oauth2-proxy splits a skip_auth_routes rule at its first "=": the expression cannot hold one.
        if not isinstance(expression, str) or not expression.startswith("^/") or "=" in expression or '"' in expression:
            raise AnsibleFilterError("SSO path expression %r must start with ^/ and hold no = or quote" % (expression,))
        try:
            re.compile(expression)
        except re.error as err:
            raise AnsibleFilterError("SSO path expression %r is not a regular expression: %s" % (expression, err))
    return "|".join("(%s)" % expression for expression in custom)


class FilterModule(object):
    def filters(self):
        return {"sso_protected_paths": sso_protected_paths}
