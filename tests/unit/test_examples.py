"""docs/examples: every variable is one a role or the site playbook reads, and its value passes the role's spec."""

import pathlib

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = pathlib.Path(__file__).resolve().parents[1].parent
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*/group_vars/*/main.yml"))
# The site playbook's own variables, each documented in docs/site.md.
SITE_VARIABLES = {
    "jellyfin_hardening_" + name for name in (
        "hosts", "jellyfin_url", "vpn", "allowlist", "sso", "reverse_proxy", "fail2ban", "blocklist", "patching", "install",
        "docker_config_dir", "docker_container", "server_name", "public_ports", "reverse_proxy_addresses", "sso_mode",
        "sso_path_policy", "sso_protected_paths", "sso_address", "audit_dir")
}


def role_options():
    options = {}
    for spec_file in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            options.update(entry.get("options", {}))
    return options


def test_there_are_three_examples():
    assert [p.parts[-4] for p in EXAMPLES] == ["ddns-friends", "public-sso", "vpn-only"]


def test_every_site_variable_is_documented():
    doc = (ROOT / "docs" / "site.md").read_text()
    assert sorted(v for v in SITE_VARIABLES if "`%s`" % v not in doc) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parts[-4])
def test_example_variables_exist_and_pass_the_specs(path):
    options = role_options()
    data = yaml.safe_load(path.read_text())
    unknown = sorted(k for k in data if k not in options and k not in SITE_VARIABLES)
    assert unknown == []
    # Templated values ({{ vault_... }}) are checked by the role at run time; the rest here.
    literal = {k: v for k, v in data.items() if k in options and "{{" not in str(v)}
    spec = {k: {key: value for key, value in options[k].items() if key in ("type", "elements", "choices", "options")}
            for k in literal}
    result = ArgumentSpecValidator(spec).validate(literal)
    assert [str(e) for e in result.errors] == []
