"""jellyfin_audit refuses bad options, naming the value, before it reads anything from the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import subprocess
import sys

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.modules import jellyfin_audit


def run_module(tmp_path, args):
    """The module as Ansible runs it: a process reading its arguments from a JSON file."""
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, jellyfin_audit.__file__, str(args_file)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PYTHONPATH": ":".join(sys.path)})
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("args, named", [
    ({"floor": "latest"}, "floor 'latest' is not a version"),
    ({"url": "ftp://127.0.0.1:8096"}, "url 'ftp://127.0.0.1:8096' is not an http:// or https:// address"),
    ({"url": "http://127.0.0.1:70000"}, "url 'http://127.0.0.1:70000' has a port outside 1-65535"),
    ({"timeout": 0}, "timeout 0 must be at least 1 second"),
    ({"stale_after": -5}, "stale_after -5 must be at least 1 second"),
])
def test_bad_option_fails_naming_the_value(tmp_path, args, named):
    rc, result = run_module(tmp_path, args)
    assert rc == 1 and result["failed"], result
    assert named in result["msg"], result["msg"]
    assert "state" not in result
