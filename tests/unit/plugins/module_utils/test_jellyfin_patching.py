"""The patch job's logic against a fake host: apt, dpkg, docker and Jellyfin's answers are simulated here only;
the Molecule scenario `patching` runs the same code against real apt, dpkg, dockerd and the stand-in."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import jellyfin_patching as jp


def key(version):
    return tuple(int(p) for p in jp.upstream(version).split("."))


class FakeHost(jp.Host):
    """A Debian host with a repository (`repo`), dpkg's database (`installed`) and a Jellyfin that is healthy unless
    its version is in `broken`; or a Docker host with images by tag."""

    def __init__(self, installed=None, repo=None, broken=(), locked_for=0, sessions=None):
        self.installed = dict(installed or {})
        self.repo = {p: list(v) for p, v in (repo or {}).items()}
        self.broken = set(broken)
        self.locked_for = locked_for
        self.sessions = sessions or (lambda now: [])
        self.clock = 0.0
        self.commands = []
        # Docker: tag -> image id, image id -> version label, the running container's image.
        self.tags, self.labels, self.running = {}, {}, None
        self.registry = {}

    # clock
    def monotonic(self):
        return self.clock

    def sleep(self, seconds):
        self.clock += seconds

    @staticmethod
    def now():
        return "2026-12-01T03:00:00+00:00"

    def apt_locked(self):
        return "/var/lib/dpkg/lock-frontend" if self.clock < self.locked_for else None

    # Jellyfin
    def version(self):
        if self.running is not None:
            return self.labels[self.running]
        return jp.upstream(self.installed.get("jellyfin-server"))

    def http_get(self, url, headers=None, timeout=5):
        version = self.version()
        if version is None or version in self.broken:
            return None, "Connection refused"
        if url.endswith("/health"):
            return 200, "Healthy"
        if url.endswith("/System/Info/Public"):
            return 200, json.dumps({"Version": version})
        if "/Sessions" in url:
            if headers.get("Authorization") != 'MediaBrowser Token="%s"' % ("k" * 32):
                return 401, ""
            return 200, json.dumps(self.sessions(self.clock))
        return 404, ""

    def run(self, argv, env=None, cwd=None, timeout=900):
        self.commands.append(argv)
        if argv[0] == "dpkg-query":
            return 0, "".join("%s\tii \t%s\n" % (p, self.installed[p]) for p in argv[4:] if p in self.installed), ""
        if argv[0] == "dpkg":
            return (0 if key(argv[2]) > key(argv[4]) else 1), "", ""
        if argv[:2] == ["apt-cache", "policy"]:
            versions = sorted(self.repo.get(argv[2], []), key=key)
            return 0, "%s:\n  Installed: %s\n  Candidate: %s\n" % (argv[2], self.installed.get(argv[2], "(none)"),
                                                                   versions[-1] if versions else "(none)"), ""
        if argv[:2] == ["apt-cache", "madison"]:
            return 0, "".join(" %s | %s | http://lab/debian bookworm/main amd64 Packages\n" % (argv[2], v)
                              for v in self.repo.get(argv[2], [])), ""
        if argv[0] == "apt-get":
            if "update" in argv:
                return 0, "", ""
            for word in argv:
                if "=" in word and not word.startswith(("DPkg", "Dpkg")):
                    package, version = word.split("=")
                    if version not in self.repo.get(package, []):
                        return 100, "", "E: Version '%s' for '%s' was not found" % (version, package)
                    self.installed[package] = version
            return 0, "", ""
        return self.docker(argv)

    def docker(self, argv):
        if argv[:3] == ["docker", "compose", "version"]:
            return 0, "Docker Compose version v2.26.1", ""
        if argv[:2] == ["docker", "compose"]:
            verb = argv[4]
            if verb == "ps":
                return 0, "c1\n" if self.running else "", ""
            if verb == "pull":
                self.tags["lab/jellyfin:latest"] = self.registry["lab/jellyfin:latest"]
                return 0, "", ""
            if verb == "up":
                self.running = self.tags["lab/jellyfin:latest"]
                return 0, "", ""
        if argv[:2] == ["docker", "tag"]:
            self.tags[argv[3]] = argv[2]
            return 0, "", ""
        if argv[1:3] == ["container", "inspect"]:
            return 0, {"{{.Image}}": self.running, "{{.Config.Image}}": "lab/jellyfin:latest"}[argv[4]] + "\n", ""
        if argv[1:3] == ["image", "inspect"]:
            image = self.tags.get(argv[5], argv[5])
            template = argv[4]
            if template == "{{.Id}}":
                return 0, image + "\n", ""
            if "RepoDigests" in template:
                return 0, "lab/jellyfin@sha256:%s\n" % image[7:15], ""
            return 0, self.labels[image] + "\n", ""
        raise AssertionError("unexpected command %s" % argv)


def config(tmp_path, mode="native", postpone=None):
    return {"mode": mode, "url": "http://127.0.0.1:8096", "health_timeout": 30, "lock_timeout": 60,
            "status_file": str(tmp_path / "status.json"), "packages": ["jellyfin", "jellyfin-server"],
            "postpone": postpone or {"enabled": False},
            "docker": {"compose_file": "/opt/jellyfin/docker-compose.yml", "service": "jellyfin", "compose_command": []}}


def run(tmp_path, host, **kwargs):
    log = jp.Log(host, str(tmp_path / "patching.log"), echo=False)
    result = jp.run(config(tmp_path, **kwargs), host, log)
    assert json.loads((tmp_path / "status.json").read_text())["result"] == result["result"]
    return result, log.lines


REPO = {"jellyfin-server": ["10.11.9+deb12", "10.11.11+deb12"], "jellyfin": ["10.11.9+deb12", "10.11.11+deb12"]}
OLD = {"jellyfin-server": "10.11.9+deb12", "jellyfin": "10.11.9+deb12"}


@pytest.mark.parametrize("version, floor, result", [
    ("10.11.9", "10.11.10", True), ("10.11.10", "10.11.10", False), ("10.11.11+deb13", "10.11.10", False),
    ("1:10.10.7-1", "10.11.10", True), (None, "10.11.10", False)])
def test_below_the_floor_compares_numbers_not_strings(version, floor, result):
    assert jp.below(version, floor) is result


def test_up_to_date_changes_nothing(tmp_path):
    host = FakeHost(installed={"jellyfin-server": "10.11.11+deb12"}, repo=REPO)
    result = run(tmp_path, host)[0]
    assert result["result"] == "up_to_date"
    assert not [c for c in host.commands if c[0] == "apt-get" and "install" in c]


def test_upgrade_installs_only_jellyfin_at_the_looked_up_versions_and_checks_health(tmp_path):
    host = FakeHost(installed=OLD, repo=REPO)
    result, lines = run(tmp_path, host)
    assert result["result"] == "upgraded" and result["to"] == "10.11.11+deb12"
    install = [c for c in host.commands if c[0] == "apt-get" and "install" in c][0]
    assert "--only-upgrade" in install and install[-2:] == ["jellyfin-server=10.11.11+deb12", "jellyfin=10.11.11+deb12"][::-1]
    assert "upgraded jellyfin-server 10.11.9+deb12 -> 10.11.11+deb12" in lines
    assert "upgraded jellyfin-server" in (tmp_path / "patching.log").read_text()


def test_a_broken_release_is_rolled_back_and_then_held_back(tmp_path):
    repo = {p: v + ["10.11.12+deb12"] for p, v in REPO.items()}
    host = FakeHost(installed={"jellyfin-server": "10.11.11+deb12", "jellyfin": "10.11.11+deb12"}, repo=repo, broken={"10.11.12"})
    result, lines = run(tmp_path, host)
    assert result["result"] == "rolled_back" and host.installed["jellyfin-server"] == "10.11.11+deb12"
    assert "--allow-downgrades" in [c for c in host.commands if c[0] == "apt-get"][-1]
    assert any("not healthy" in line and "10.11.12" in line for line in lines)
    # The next run does not break Jellyfin again for the same version.
    host.commands = []
    again = run(tmp_path, host)[0]
    assert again["result"] == "held_back" and not [c for c in host.commands if "install" in c]
    # A newer release is tried.
    for versions in host.repo.values():
        versions.append("10.11.13+deb12")
    assert run(tmp_path, host)[0]["result"] == "upgraded" and host.installed["jellyfin-server"] == "10.11.13+deb12"


def test_without_the_previous_version_in_the_repository_the_failure_says_so(tmp_path):
    host = FakeHost(installed=OLD, repo={p: ["10.11.12+deb12"] for p in REPO}, broken={"10.11.12"})
    result = run(tmp_path, host)[0]
    assert result["result"] == "failed" and "no longer has" in result["message"] and "needs a hand" in result["message"]


def test_the_apt_lock_is_waited_for_and_a_lock_held_too_long_changes_nothing(tmp_path):
    host = FakeHost(installed=OLD, repo=REPO, locked_for=20)
    result, lines = run(tmp_path, host)
    assert result["result"] == "upgraded" and any(line.startswith("waiting for /var/lib/dpkg/lock-frontend") for line in lines)
    stuck = FakeHost(installed=OLD, repo=REPO, locked_for=10 ** 6)
    result = run(tmp_path, stuck)[0]
    assert result["result"] == "failed" and "nothing was changed" in result["message"]
    assert stuck.installed == OLD and stuck.clock <= 62


def postpone(tmp_path, max_delay=600):
    (tmp_path / "api_key").write_text("k" * 32 + "\n")
    return {"enabled": True, "api_key_file": str(tmp_path / "api_key"), "max_delay": max_delay, "interval": 60}


def test_streaming_postpones_until_it_ends(tmp_path):
    host = FakeHost(installed=OLD, repo=REPO, sessions=lambda now: [{"NowPlayingItem": {"Id": "m"}}] if now < 150 else [{}])
    result, lines = run(tmp_path, host, postpone=postpone(tmp_path))
    assert result["result"] == "upgraded" and 150 <= host.clock < 300
    assert sum("upgrade postponed" in line for line in lines) == 3


def test_streaming_postpones_at_most_the_maximum(tmp_path):
    host = FakeHost(installed=OLD, repo=REPO, sessions=lambda now: [{"NowPlayingItem": {"Id": "m"}}])
    result, lines = run(tmp_path, host, postpone=postpone(tmp_path, max_delay=200))
    assert result["result"] == "upgraded" and host.clock == 200 and "upgrading anyway" in lines[-5]


def test_an_unreadable_sessions_list_does_not_postpone(tmp_path):
    host = FakeHost(installed=OLD, repo=REPO, sessions=lambda now: [{"NowPlayingItem": {"Id": "m"}}])
    settings = postpone(tmp_path)
    (tmp_path / "api_key").write_text("wrong-key-wrong-key\n")
    result, lines = run(tmp_path, host, postpone=settings)
    assert result["result"] == "upgraded" and host.clock == 0
    assert any("/Sessions answered 401" in line for line in lines)


def docker_host():
    host = FakeHost()
    host.labels = {"sha256:a9": "10.11.9", "sha256:b11": "10.11.11", "sha256:c12": "10.11.12"}
    host.registry["lab/jellyfin:latest"] = host.tags["lab/jellyfin:latest"] = host.running = "sha256:a9"
    return host


def test_docker_recreates_only_when_the_image_changed(tmp_path):
    host = docker_host()
    assert run(tmp_path, host, mode="docker")[0]["result"] == "up_to_date"
    assert not [c for c in host.commands if "up" in c]
    host.registry["lab/jellyfin:latest"] = "sha256:b11"
    result = run(tmp_path, host, mode="docker")[0]
    assert result["result"] == "upgraded" and host.running == "sha256:b11"


def test_docker_rolls_back_to_the_previous_image_and_holds_the_bad_one_back(tmp_path):
    host = docker_host()
    host.running = host.tags["lab/jellyfin:latest"] = "sha256:b11"
    host.registry["lab/jellyfin:latest"] = "sha256:c12"
    host.broken = {"10.11.12"}
    result = run(tmp_path, host, mode="docker")[0]
    assert result["result"] == "rolled_back" and host.running == "sha256:b11"
    assert host.tags["lab/jellyfin:latest"] == "sha256:b11", "the tag points back at the good image"
    again = run(tmp_path, host, mode="docker")[0]
    assert again["result"] == "held_back" and host.running == "sha256:b11" and host.tags["lab/jellyfin:latest"] == "sha256:b11"
