"""The site playbook refuses a bad switch before it touches anything."""

import json
import os
import subprocess

SCENARIO = os.environ["MOLECULE_SCENARIO_DIRECTORY"]


def test_a_switch_that_is_not_a_boolean_stops_the_play_naming_it():
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1")
    run = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(SCENARIO, "converge.yml"),
                          "--limit", "site-jf13", "-e", json.dumps({"jellyfin_hardening_vpn": "maybe"})],
                         capture_output=True, text=True, timeout=600, check=False, env=env)
    assert run.returncode != 0
    plays = json.loads(run.stdout)["plays"]
    site = plays[-1]["tasks"]
    failed = [t for t in site if t["hosts"]["site-jf13"].get("failed")]
    assert [t["task"]["name"] for t in failed] == ["Check the layer switches (nothing is touched yet)"]
    assert "'vpn': 'maybe'" in failed[0]["hosts"]["site-jf13"]["msg"]
    # Nothing ran before the check but reading facts.
    assert [t["task"]["name"] for t in site[:site.index(failed[0])]] in ([], ["Gathering Facts"])
    assert not any(t["hosts"]["site-jf13"].get("changed") for t in site)
