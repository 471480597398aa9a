"""The audit playbook on the hosts the site playbook hardened: read-only in check mode, and it sees a failure."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from labhosts import connect  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
PUBLIC = connect("site-jf12")


def audit(report_dir, *args):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1")
    run = subprocess.run(["ansible-playbook", "--check", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                          os.path.join(ROOT, "playbooks", "audit.yml"), "-e", "jellyfin_hardening_audit_dir=%s" % report_dir, *args],
                         capture_output=True, text=True, timeout=600, check=False, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    tasks = json.loads(run.stdout)["plays"][0]["tasks"]
    read = next(t for t in tasks if t["task"]["name"] == "Read where the host stands")
    return read["hosts"]


def test_the_audit_reads_each_setup_and_changes_no_host(tmp_path):
    hosts = audit(tmp_path)
    assert {name: result["changed"] for name, result in hosts.items()} == {"site-jf12": False, "site-jf13": False}
    public, private = hosts["site-jf12"]["layers"], hosts["site-jf13"]["layers"]
    in_force = {name: sorted(k for k, v in layers.items() if v["in_force"]) for name, layers in (("jf12", public), ("jf13", private))}
    assert in_force == {"jf12": ["blocklist", "fail2ban", "patching", "reverse_proxy", "sso"],
                        "jf13": ["allowlist", "patching", "vpn"]}
    assert all(v["healthy"] for layers in (public, private) for v in layers.values() if v["in_force"]), (public, private)
    assert "a synthetic failed login matches" in public["fail2ban"]["detail"]
    assert "4501 entries" in public["blocklist"]["detail"]
    # Jellyfin listens on every address on jf13, behind the allowlist and the VPN: no high finding there.
    assert hosts["site-jf13"]["state"]["jellyfin"]["listens_on"] and not [f for f in hosts["site-jf13"]["findings"] if f["risk"] == "high"]
    version = hosts["site-jf12"]["state"]["jellyfin"]["version"]
    high = [f["finding"] for f in hosts["site-jf12"]["findings"] if f["risk"] == "high"]
    assert high == ([] if version == "10.11.11" else ["Jellyfin %s is below the security floor 10.11.10" % version]), high
    markdown = (tmp_path / "site-jf12.md").read_text()
    html = (tmp_path / "site-jf12.html").read_text()
    assert "| sso | yes | yes | oauth2-proxy answers |" in markdown
    # Self-contained: nothing for a browser to fetch.
    assert html.startswith("<!DOCTYPE html>") and "<td>fail2ban</td>" in html and "<link" not in html and "src=" not in html
    assert oct((tmp_path / "site-jf13.md").stat().st_mode & 0o777) == "0o600"


def test_the_audit_reports_sso_down_when_oauth2_proxy_stops(tmp_path):
    PUBLIC.run_expect([0], "systemctl stop oauth2-proxy")
    try:
        hosts = audit(tmp_path, "--limit", "site-jf12")
    finally:
        PUBLIC.run_expect([0], "systemctl start oauth2-proxy")
    assert hosts["site-jf12"]["layers"]["sso"] == {"in_force": True, "healthy": False, "detail": "oauth2-proxy does not answer"}
    assert {"risk": "medium", "finding": "oauth2-proxy does not answer on 127.0.0.1:4180: the web UI fails closed",
            "fix": "systemctl status oauth2-proxy"} in hosts["site-jf12"]["findings"]
