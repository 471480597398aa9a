"""Patching with real apt (the lab's signed repository), real dpkg locks, a real dockerd with a local registry,
and the Jellyfin stand-in packaged and imaged at 10.11.9, 10.11.11 and a broken 10.11.12."""

import datetime
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from labhosts import connect  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
NATIVE = connect("patch-native")
DOCKER = connect("patch-docker")
JOB = "jellyfin-hardening-patch.service"
STATUS = "/var/lib/jellyfin-hardening/patching/status.json"
LOG = "/var/log/jellyfin-hardening/patching.log"
API_KEY = "0123456789abcdef0123456789abcdef"


def ansible(*args, callback="ansible.builtin.json", adhoc=False):
    command = ["ansible" if adhoc else "ansible-playbook", "-i", INVENTORY, *args]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK=callback, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, env=env)


def wait_for(predicate, what, attempts=60, host=NATIVE):
    for _attempt in range(attempts):
        if predicate():
            return
        host.run("sleep 1")
    pytest.fail("%s: not within %d attempts" % (what, attempts))


def public_version(host):
    out = host.check_output("jfclient get http://127.0.0.1:8096 --path /System/Info/Public --timeout 3")
    answer = json.loads(out.splitlines()[-1])
    return json.loads(answer["body"])["Version"] if answer["status"] == 200 else None


def installed(host):
    return dict(line.split() for line in host.check_output(
        "dpkg-query -W -f '${Package} ${Version}\\n' jellyfin jellyfin-server").splitlines())


def status(host):
    return json.loads(host.check_output("cat %s" % STATUS))


def journal(host, since):
    return host.check_output("journalctl -u %s --since @%d --no-pager -o cat" % (JOB, since))


def run_job(host):
    """Start the job's unit as the timer does and wait for it; the unit's result and the run's journal."""
    since = int(host.check_output("date +%s"))
    host.run("systemctl start %s" % JOB)
    return host.check_output("systemctl show -p Result --value %s" % JOB), journal(host, since)


def test_the_timer_is_enabled_and_due_in_the_window():
    assert NATIVE.check_output("systemctl is-enabled jellyfin-hardening-patch.timer") == "enabled"
    show = dict(line.split("=", 1) for line in NATIVE.check_output(
        "systemctl show -p Persistent -p RandomizedDelayUSec -p NextElapseUSecRealtime -p TimersCalendar "
        "jellyfin-hardening-patch.timer").splitlines())
    assert show["Persistent"] == "yes" and show["RandomizedDelayUSec"] == "1h"
    assert "OnCalendar=Sun *-*-* 03:00:00" in show["TimersCalendar"]
    # The next run: a Sunday between 03:00 and 04:00 (the calendar time plus at most the random delay).
    due = datetime.datetime.strptime(show["NextElapseUSecRealtime"].rsplit(" ", 1)[0], "%a %Y-%m-%d %H:%M:%S")
    assert due.weekday() == 6 and datetime.time(3, 0) <= due.time() <= datetime.time(4, 0), due
    assert datetime.timedelta(0) < due - datetime.datetime.utcnow() <= datetime.timedelta(days=7, hours=1)


def test_cron_instead_of_the_timer_on_the_docker_host():
    assert DOCKER.run("systemctl is-enabled jellyfin-hardening-patch.timer").stdout.strip() != "enabled"
    line = [entry for entry in DOCKER.file("/etc/cron.d/jellyfin-hardening-patch").content_string.splitlines()
            if entry and not entry.startswith(("#", "PATH"))]
    assert line == ["0 3 * * 0 root /usr/local/sbin/jellyfin-hardening-patch run --random-delay 3600 2>&1"
                    " | systemd-cat -t jellyfin-hardening-patch"]
    assert not NATIVE.file("/etc/cron.d/jellyfin-hardening-patch").exists


def test_the_repository_is_deb822_signed_and_the_old_line_gone():
    sources = NATIVE.file("/etc/apt/sources.list.d/jellyfin.sources").content_string
    assert "Signed-By: /etc/apt/keyrings/jellyfin.asc" in sources and "Suites: bookworm" in sources
    assert not NATIVE.file("/etc/apt/sources.list.d/jellyfin.list").exists
    assert NATIVE.file("/etc/apt/keyrings/jellyfin.asc").content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    policy = NATIVE.check_output("apt-cache policy jellyfin-server")
    assert "Candidate: 10.11.11+deb12" in policy and ":8080 bookworm/main" in policy
    # apt really checks the signature: with the key replaced by another, the repository's index is refused.
    update = ("apt-get update -o Dir::Etc::SourceList=/etc/apt/sources.list.d/jellyfin.sources -o Dir::Etc::SourceParts=- "
              "-o APT::Get::List-Cleanup=0")
    NATIVE.check_output("cp -p /etc/apt/keyrings/jellyfin.asc /root/jellyfin.asc && cp /usr/share/keyrings/debian-archive-keyring.gpg"
                        " /etc/apt/keyrings/jellyfin.asc")
    try:
        refused = NATIVE.run(update)
    finally:
        NATIVE.check_output("cp -p /root/jellyfin.asc /etc/apt/keyrings/jellyfin.asc")
    # apt keeps the lists it had and warns; the point is that it did not take the index signed by an unknown key.
    output = refused.stdout + refused.stderr
    assert "signatures couldn't be verified" in output and "NO_PUBKEY" in output, output
    good = NATIVE.run(update)
    assert good.rc == 0 and "couldn't be verified" not in good.stdout + good.stderr


def test_the_version_fact_warns_below_the_floor():
    run = ansible("patch-native", "-m", "homelab.jellyfin_hardening.jellyfin_version", adhoc=True,
                  callback="ansible.builtin.json")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["patch-native"]
    fact = result["ansible_facts"]["jellyfin_version"]
    assert fact == {"installed": "10.11.9", "installed_package": "10.11.9+deb12", "candidate": "10.11.11",
                    "server": "10.11.9", "floor": "10.11.10", "below_floor": True}
    assert any("below the security floor 10.11.10" in w for w in result["warnings"]), result.get("warnings")


def test_unattended_upgrades_take_the_security_origin_only():
    for host, reboot in ((NATIVE, "true"), (DOCKER, "false")):
        dump = host.check_output("apt-config dump")
        origins = [line for line in dump.splitlines() if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
        assert origins == ['Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename}-security,'
                           'label=Debian-Security";'], origins
        assert 'Unattended-Upgrade::Automatic-Reboot "%s";' % reboot in dump
        assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
        assert host.check_output("systemctl is-enabled apt-daily-upgrade.timer") == "enabled"
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "04:30";' in NATIVE.check_output("apt-config dump")


def test_the_timer_job_waits_for_the_dpkg_lock_and_a_stream_then_upgrades_only_jellyfin():
    since = int(NATIVE.check_output("date +%s"))
    # Someone is watching: alice logs in and reports playback, as a Jellyfin app does.
    token = json.loads(json.loads(NATIVE.check_output(
        "jfclient login http://127.0.0.1:8096 --user alice --password alice-lab-password").splitlines()[-1])["body"])["AccessToken"]
    play = ("python3 -c \"import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8096/Sessions/Playing%s', "
            "data=b'{\\\"ItemId\\\": \\\"m1\\\"}', headers={'X-Emby-Token': '" + token + "'}), timeout=3)\"")
    NATIVE.check_output(play % "")
    # Another apt run holds dpkg's lock (an fcntl lock, as apt takes it).
    NATIVE.check_output("systemd-run --unit=lab-dpkg-lock python3 -c \"import fcntl, time; h = open('/var/lib/dpkg/lock-frontend', 'w'); "
                        "fcntl.lockf(h, fcntl.LOCK_EX); time.sleep(300)\"")
    NATIVE.check_output("systemctl start --no-block %s" % JOB)
    try:
        wait_for(lambda: "waiting for /var/lib/dpkg/lock-frontend" in journal(NATIVE, since), "the job to wait for the lock")
        assert installed(NATIVE)["jellyfin-server"] == "10.11.9+deb12"
    finally:
        NATIVE.run("systemctl stop lab-dpkg-lock")
    wait_for(lambda: "upgrade postponed" in journal(NATIVE, since), "the job to see the stream")
    assert installed(NATIVE)["jellyfin-server"] == "10.11.9+deb12", "upgraded while someone was streaming"
    NATIVE.check_output(play % "/Stopped")
    wait_for(lambda: NATIVE.check_output("systemctl show -p ActiveState --value %s" % JOB) != "activating", "the job to end", 120)
    assert NATIVE.check_output("systemctl show -p Result --value %s" % JOB) == "success"
    assert installed(NATIVE) == {"jellyfin": "10.11.11+deb12", "jellyfin-server": "10.11.11+deb12"}
    assert public_version(NATIVE) == "10.11.11"
    log = journal(NATIVE, since)
    assert "upgraded jellyfin-server 10.11.9+deb12 -> 10.11.11+deb12" in log and "upgraded jellyfin 10.11.9+deb12 -> 10.11.11+deb12" in log
    assert "Jellyfin answers /health and reports 10.11.11" in log
    assert "upgraded jellyfin-server 10.11.9+deb12 -> 10.11.11+deb12" in NATIVE.check_output("cat %s" % LOG)
    assert status(NATIVE)["result"] == "upgraded"
    # Only Jellyfin's packages: apt's history of this run's install names these two and nothing else.
    history = NATIVE.check_output("cat /var/log/apt/history.log").split("\n\n")[-1]
    upgraded = re.search(r"^Upgrade: (.*)$", history, re.M).group(1)
    assert sorted(re.findall(r"([a-z0-9.+-]+):\w+ \(10\.11\.9\+deb12, 10\.11\.11\+deb12\)", upgraded)) == ["jellyfin", "jellyfin-server"]
    assert upgraded.count("(") == 2 and "Install:" not in history and "Remove:" not in history, history


def test_a_broken_release_is_rolled_back_and_not_tried_again():
    DOCKER.check_output("SUITE=bookworm DEBSUFFIX=+deb12 aptrepo publish 10.11.9 10.11.11 10.11.12")
    result, log = run_job(NATIVE)
    assert result == "exit-code", "a failed upgrade must fail the unit"
    assert "Jellyfin was not healthy at http://127.0.0.1:8096 with version 10.11.12 within 15 s" in log
    assert "rolled back to 10.11.11+deb12, which is healthy" in log
    assert installed(NATIVE) == {"jellyfin": "10.11.11+deb12", "jellyfin-server": "10.11.11+deb12"}
    assert public_version(NATIVE) == "10.11.11"
    state = status(NATIVE)
    assert state["result"] == "rolled_back" and state["to"] == "10.11.12+deb12" and "10.11.12+deb12" in state["bad_versions"]
    # The next run stays on 10.11.11 without touching apt's packages.
    before = NATIVE.check_output("stat -c %Y /var/log/apt/history.log")
    result, log = run_job(NATIVE)
    assert result == "success" and "jellyfin-server 10.11.12+deb12 failed its health check on" in log
    assert status(NATIVE)["result"] == "held_back" and NATIVE.check_output("stat -c %Y /var/log/apt/history.log") == before
    assert public_version(NATIVE) == "10.11.11"


def container(host):
    """The Compose service's container and its image (docker inspect's JSON: Go templates would meet Ansible's)."""
    cid = host.check_output("docker compose -f /opt/jellyfin/docker-compose.yml ps -q jellyfin")
    return cid, json.loads(host.check_output("docker container inspect %s" % cid))[0]["Image"]


def image_id(host, version):
    return json.loads(host.check_output("docker image inspect localhost:5000/jellyfin/jellyfin:%s" % version))[0]["Id"]


def test_compose_recreates_only_on_a_new_image_and_rolls_back_a_broken_one():
    first, image = container(DOCKER)
    assert image == image_id(DOCKER, "10.11.9")
    result, log = run_job(DOCKER)
    assert result == "success" and status(DOCKER)["result"] == "up_to_date" and container(DOCKER)[0] == first

    DOCKER.check_output("lab-image-publish 10.11.11")
    result, log = run_job(DOCKER)
    assert result == "success" and status(DOCKER)["result"] == "upgraded", log
    assert container(DOCKER)[1] == image_id(DOCKER, "10.11.11") and public_version(DOCKER) == "10.11.11"
    assert "Jellyfin answers /health and reports 10.11.11" in log

    DOCKER.check_output("lab-image-publish 10.11.12")
    result, log = run_job(DOCKER)
    assert result == "exit-code", log
    state = status(DOCKER)
    assert state["result"] == "rolled_back" and state["from"].startswith("localhost:5000/jellyfin/jellyfin@sha256:")
    assert container(DOCKER)[1] == image_id(DOCKER, "10.11.11") and public_version(DOCKER) == "10.11.11"
    assert image_id(DOCKER, "latest") == image_id(DOCKER, "10.11.11"), "the tag points back at the good image"
    result, log = run_job(DOCKER)
    assert result == "success" and status(DOCKER)["result"] == "held_back"
    assert container(DOCKER)[1] == image_id(DOCKER, "10.11.11")
    assert "-> localhost:5000/jellyfin/jellyfin@sha256:" in DOCKER.check_output("cat %s" % LOG)


def test_renovate_and_dependabot_track_the_jellyfin_image():
    renovate = json.loads(DOCKER.check_output("cat /opt/jellyfin/renovate.json"))
    assert renovate["extends"] == ["config:recommended"]
    assert renovate["packageRules"] == [{
        "description": "Jellyfin: a pull request per new image, never merged without a person",
        "matchDatasources": ["docker"], "matchPackageNames": ["jellyfin/jellyfin"], "automerge": False,
        "schedule": ["after 9pm on sunday"]}]
    dependabot = yaml.safe_load(DOCKER.check_output("cat /opt/jellyfin/.github/dependabot.yml"))
    assert dependabot["version"] == 2
    assert dependabot["updates"][0]["package-ecosystem"] == "docker-compose"
    assert dependabot["updates"][0]["allow"] == [{"dependency-name": "jellyfin/jellyfin"}]


def test_the_api_key_is_root_only_and_never_in_the_output():
    key = NATIVE.file("/etc/jellyfin-hardening/patching/api_key")
    assert key.mode == 0o600 and key.user == "root" and key.content_string.strip() == API_KEY
    assert API_KEY not in NATIVE.check_output("cat /etc/jellyfin-hardening/patching/patching.json")
    run = ansible(os.path.join(SCENARIO, "converge.yml"), "-v", "--limit", "patch-native", "--check", callback="ansible.builtin.default")
    assert run.returncode == 0, run.stdout[-3000:]
    assert API_KEY not in run.stdout + run.stderr


@pytest.mark.parametrize("extra_vars, named", [
    ({"patching_jellyfin_on_calendar": "Sunday at noonish"}, "Sunday at noonish"),
    ({"patching_jellyfin_url": "ftp://127.0.0.1"}, "ftp://127.0.0.1"),
    ({"patching_jellyfin_api_key": "short"}, "given 5 characters"),
])
def test_bad_settings_fail_before_anything_is_touched(extra_vars, named):
    files = "sha256sum /etc/jellyfin-hardening/patching/patching.json /etc/systemd/system/jellyfin-hardening-patch.timer"
    before = NATIVE.check_output(files)
    run = ansible(os.path.join(SCENARIO, "converge.yml"), "--limit", "patch-native", "-e", json.dumps(extra_vars))
    assert run.returncode != 0 and named in run.stdout, run.stdout[-3000:]
    assert NATIVE.check_output(files) == before
