"""Shared by every scenario: after converge, a converge in check mode reports no change and fails nothing."""

import json
import os
import subprocess


def test_check_mode_converge_reports_no_change():
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1")
    run = subprocess.run(
        ["ansible-playbook", "--check", "--diff", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(scenario, "converge.yml")],
        env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    stats = json.loads(run.stdout)["stats"]
    assert stats, "the check run reached no host"
    changed = {host: s["changed"] for host, s in stats.items() if s["changed"] or s["failures"] or s["unreachable"]}
    assert not changed, "check mode after converge reported changes or failures: %s" % changed
