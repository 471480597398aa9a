import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.jellyfin_hardening.plugins.filter.sso_protected_paths import sso_protected_paths

WEB_UI = ["/web", "/web/", "/WEB/index.html", "/emby/web/index.html", "/MediaBrowser/Web/", "/api-docs/swagger/index.html",
          "/EMBY/API-DOCS/redoc/"]
API = ["/Users/AuthenticateByName", "/Items", "/socket", "/webhooks", "/System/Info/Public", "/emby/Items", "/Web2/x", "/"]


def protected(regex, path):
    return re.search(regex, path, re.IGNORECASE) is not None


@pytest.mark.parametrize("path", WEB_UI)
def test_web_only_covers_every_spelling_of_the_web_ui(path):
    assert protected(sso_protected_paths("web_only"), path)


@pytest.mark.parametrize("path", API)
def test_web_only_leaves_the_api_to_the_apps(path):
    assert not protected(sso_protected_paths("web_only"), path)


@pytest.mark.parametrize("path", WEB_UI + API)
def test_strict_covers_everything(path):
    assert protected(sso_protected_paths("strict"), path)


def test_custom_joins_the_expressions():
    regex = sso_protected_paths("custom", ["^/web/", "^/users/public$"])
    assert protected(regex, "/Users/Public") and protected(regex, "/web/x") and not protected(regex, "/Items")


@pytest.mark.parametrize("policy, custom, named", [
    ("open", None, "'open'"),
    ("custom", None, "None"),
    ("custom", "^/web/", "'\\^/web/'"),
    ("custom", ["/web/"], "'/web/'"),
    ("custom", ["^/a=b"], "'\\^/a=b'"),
    ("custom", ["^/(web"], "not a regular expression"),
])
def test_bad_policies_and_expressions_are_named(policy, custom, named):
    with pytest.raises(AnsibleFilterError, match=named):
        sso_protected_paths(policy, custom)
