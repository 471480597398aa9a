"""Verify for the site scenario: the lab's attack drill (tests/lab/drill.py, which `make lab` runs too)."""

import json
import os
import subprocess
import sys

ROOT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
ATTACKS = ["a blocklisted network", "a web visitor without SSO", "an unknown address", "a forged log line",
           "password guessing", "a stale Jellyfin version"]


def test_every_attack_of_the_threat_model_is_stopped(tmp_path):
    report = tmp_path / "drill.json"
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "lab", "drill.py"), "--json", str(report)],
                         capture_output=True, text=True, timeout=900, check=False)
    print(run.stdout, run.stderr)
    rows = json.loads(report.read_text())
    assert [r["attack"] for r in rows] == ATTACKS
    assert [r["attack"] for r in rows if not r["stopped"]] == [], run.stdout
    assert run.returncode == 0 and "6 of 6 attacks stopped" in run.stdout
    # The first drill after converge really patches: the host starts on a release below the floor.
    stale = rows[-1]["evidence"]
    assert stale.startswith("10.11.9 (below the floor 10.11.10) -> 10.11.11"), stale
