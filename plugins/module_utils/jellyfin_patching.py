# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jellyfin's patch job: versions, the apt and Docker Compose upgrades with their health check and rollback, the
postponement while someone streams, and the status file. The jellyfin_version module and the host-side command
jellyfin-hardening-patch (the timer's and cron's job) both run this code."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import json
import os
import re
import subprocess
import sys
import time

from urllib.error import HTTPError, URLError
from urllib.request import Request, build_opener

# apt and dpkg's lock files (fcntl locks, as apt takes them: flock() would not see them).
APT_LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")
# Only ever Jellyfin's own packages, each named: the metapackage alone need not move jellyfin-server.
DEFAULT_PACKAGES = ("jellyfin", "jellyfin-server", "jellyfin-web")
VERSION_LABEL = "org.opencontainers.image.version"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none", "LC_ALL": "C"}
APT_OPTIONS = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


class PatchError(RuntimeError):
    """A step failed; the message says which and what was left in place."""


def upstream(version):
    """'1:10.11.11+deb12' or '10.11.11-1' -> '10.11.11': the version Jellyfin itself reports."""
    if not version:
        return version
    version = version.split(":", 1)[-1]
    return re.split(r"[+~-]", version, 1)[0]


def version_key(version):
    """A sortable key of an upstream version: '10.11.9' < '10.11.10'."""
    return tuple(int(part) if part.isdigit() else -1 for part in re.split(r"[.]", upstream(version) or ""))


def below(version, floor):
    return bool(version) and version_key(version) < version_key(floor)


def valid_floor(floor):
    return bool(re.match(r"^\d+(\.\d+){1,3}$", floor or ""))


class Host(object):
    """The commands, HTTP and clock the job uses; unit tests pass a fake with the same methods."""

    def run(self, argv, env=None, cwd=None, timeout=900):
        full_env = dict(os.environ, **(env or {}))
        try:
            proc = subprocess.run(argv, env=full_env, cwd=cwd, timeout=timeout, check=False, capture_output=True, text=True)
        except OSError as err:
            return 127, "", "%s: %s" % (argv[0], err)
        except subprocess.TimeoutExpired:
            return 124, "", "%s did not finish within %d s" % (" ".join(argv), timeout)
        return proc.returncode, proc.stdout, proc.stderr

    def http_get(self, url, headers=None, timeout=5):
        """(status, body); status None with the reason as body when nothing answered."""
        try:
            with build_opener().open(Request(url, headers=headers or {}), timeout=timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except HTTPError as err:
            return err.code, ""
        except (URLError, OSError, ValueError) as err:
            return None, str(getattr(err, "reason", err))

    def apt_locked(self):
        """The first apt or dpkg lock another process holds, or None."""
        for path in APT_LOCKS:
            try:
                handle = open(path, "a")
            except (IOError, OSError):
                continue
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.lockf(handle, fcntl.LOCK_UN)
            except (IOError, OSError) as err:
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    return path
            finally:
                handle.close()
        return None

    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    @staticmethod
    def now():
        return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


class Log(object):
    """Every line to stdout or stderr (the journal, under the timer) and to the log file, with the time."""

    def __init__(self, host, path=None, echo=True):
        self.host, self.path, self.echo, self.lines = host, path, echo, []

    def _write(self, level, message):
        self.lines.append(message)
        if self.echo:
            stream = sys.stdout if level == "info" else sys.stderr
            stream.write(("%s: %s" % (level, message) if level != "info" else message) + "\n")
            stream.flush()
        if self.path:
            directory = os.path.dirname(self.path)
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o750)
            with open(self.path, "a") as handle:
                handle.write("%s %s %s\n" % (self.host.now(), level, message))

    def info(self, message):
        self._write("info", message)

    def warning(self, message):
        self._write("warning", message)

    def error(self, message):
        self._write("error", message)


# --- apt -------------------------------------------------------------------------------------------------------

def dpkg_installed(host, packages):
    """{package: version} of those installed."""
    out = host.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n"] + list(packages),
                   env={"LC_ALL": "C"})[1]
    found = {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[1].startswith("ii") and fields[2]:
            found[fields[0]] = fields[2]
    return found


def apt_candidate(host, package):
    rc, out, err = host.run(["apt-cache", "policy", package], env={"LC_ALL": "C"})
    match = re.search(r"^\s+Candidate:\s*(\S+)", out, re.M)
    if rc != 0 or not match or match.group(1) == "(none)":
        return None
    return match.group(1)


def apt_available(host, package):
    """Versions a repository offers now (not the one only dpkg's database knows)."""
    out = host.run(["apt-cache", "madison", package], env={"LC_ALL": "C"})[1]
    versions = []
    for line in out.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) >= 3 and fields[0] == package and "Packages" in fields[2]:
            versions.append(fields[1])
    return versions


def newer(host, candidate, installed):
    return host.run(["dpkg", "--compare-versions", candidate, "gt", installed])[0] == 0


def wait_for_apt(host, log, timeout):
    """Wait (bounded) while unattended-upgrades or a user's apt holds the locks, instead of failing at once."""
    deadline = host.monotonic() + timeout
    said = False
    while True:
        holder = host.apt_locked()
        if holder is None:
            return
        if host.monotonic() >= deadline:
            raise PatchError("%s stayed locked for %d s (another apt or dpkg run): nothing was changed" % (holder, timeout))
        if not said:
            log.info("waiting for %s: another apt or dpkg run holds it (at most %d s)" % (holder, timeout))
            said = True
        host.sleep(2)


def apt_get(host, args, lock_timeout):
    # DPkg::Lock::Timeout covers the moment between our wait and apt's own lock.
    argv = ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=%d" % lock_timeout] + APT_OPTIONS + args
    return host.run(argv, env=APT_ENV, timeout=3600)


def tail(text, lines=5):
    return " | ".join(line.strip() for line in (text or "").strip().splitlines()[-lines:])


# --- Jellyfin's answers ------------------------------------------------------------------------------------------

def server_version(host, url, timeout=5):
    status, body = host.http_get(url.rstrip("/") + "/System/Info/Public", timeout=timeout)
    if status != 200:
        return None
    try:
        return json.loads(body).get("Version")
    except (ValueError, AttributeError):
        return None


def healthy(host, url, expect, timeout, log):
    """True once /health says Healthy and /System/Info/Public reports `expect` (any version when None)."""
    deadline = host.monotonic() + timeout
    seen = "no answer"
    while True:
        status, body = host.http_get(url.rstrip("/") + "/health", timeout=5)
        if status == 200 and body.strip() == "Healthy":
            version = server_version(host, url)
            if version and (expect is None or upstream(version) == upstream(expect)):
                log.info("Jellyfin answers /health and reports %s" % version)
                return True
            seen = "/System/Info/Public reports %s" % (version or "nothing")
        else:
            seen = "/health answered %s" % (status if status is not None else body)
        if host.monotonic() >= deadline:
            log.error("Jellyfin was not healthy at %s %s within %d s (last: %s)" % (
                url, "with version " + upstream(expect) if expect else "", timeout, seen))
            return False
        # Jellyfin needs a moment after its restart: look often, so the job ends soon after it answers.
        host.sleep(0.5)


def active_streams(host, url, api_key):
    """How many sessions are playing something, from Jellyfin's /Sessions (needs an API key)."""
    headers = {"Authorization": 'MediaBrowser Token="%s"' % api_key}
    status, body = host.http_get(url.rstrip("/") + "/Sessions?activeWithinSeconds=960", headers=headers, timeout=10)
    if status != 200:
        raise PatchError("/Sessions answered %s" % (status if status is not None else body))
    try:
        return sum(1 for session in json.loads(body) if session.get("NowPlayingItem"))
    except (ValueError, AttributeError, TypeError):
        raise PatchError("/Sessions did not answer a list of sessions")


def wait_while_streaming(config, host, log):
    """Postpone while someone streams, at most `max_delay` seconds; a failed look at /Sessions does not postpone."""
    postpone = config.get("postpone") or {}
    if not postpone.get("enabled"):
        return
    try:
        with open(postpone["api_key_file"]) as handle:
            api_key = handle.read().strip()
    except (IOError, OSError) as err:
        log.warning("cannot read the API key (%s): not postponing" % err)
        return
    deadline = host.monotonic() + postpone["max_delay"]
    while True:
        try:
            playing = active_streams(host, config["url"], api_key)
        except PatchError as err:
            log.warning("cannot see who is streaming (%s): not postponing" % err)
            return
        if not playing:
            return
        left = deadline - host.monotonic()
        if left <= 0:
            log.warning("%d streams still playing after %d s: upgrading anyway" % (playing, postpone["max_delay"]))
            return
        log.info("%d streams playing: upgrade postponed, next look in %d s" % (playing, min(postpone["interval"], left)))
        host.sleep(min(postpone["interval"], left))


# --- the status file -----------------------------------------------------------------------------------------

def read_status(path):
    try:
        with open(path) as handle:
            status = json.load(handle)
        return status if isinstance(status, dict) else {}
    except (IOError, OSError, ValueError):
        return {}


def write_status(path, status):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(status, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(temporary, 0o644)
    os.rename(temporary, path)


# --- the native upgrade ----------------------------------------------------------------------------------------

def patch_native(config, host, log, state):
    packages = config.get("packages") or list(DEFAULT_PACKAGES)
    lock_timeout = config.get("lock_timeout", 600)
    wait_for_apt(host, log, lock_timeout)
    # Only the Jellyfin source when the role manages it: another repository's outage cannot stop the patch.
    sources = config.get("apt_sources")
    update = ["-o", "Dir::Etc::SourceList=" + sources, "-o", "Dir::Etc::SourceParts=-", "-o", "APT::Get::List-Cleanup=0",
              "update"] if sources else ["update"]
    rc, out, err = apt_get(host, update, lock_timeout)
    if rc != 0:
        raise PatchError("apt-get update failed (%s): nothing was changed" % tail(err or out))
    installed = dpkg_installed(host, packages)
    if not installed:
        raise PatchError("none of %s is installed: nothing to patch" % ", ".join(packages))
    plan = {}
    for package, version in sorted(installed.items()):
        candidate = apt_candidate(host, package)
        if candidate and candidate != version and newer(host, candidate, version):
            plan[package] = (version, candidate)
    if not plan:
        return {"result": "up_to_date", "message": "%s up to date" % ", ".join(
            "%s %s" % item for item in sorted(installed.items()))}
    main = "jellyfin-server" if "jellyfin-server" in plan else sorted(plan)[0]
    target = plan[main][1]
    if target in state.get("bad_versions", {}):
        log.warning("%s %s failed its health check on %s: staying on %s until a newer version comes" % (
            main, target, state["bad_versions"][target], plan[main][0]))
        return {"result": "held_back", "from": plan[main][0], "to": target,
                "message": "%s %s is known bad here; %s stays" % (main, target, plan[main][0])}
    wait_while_streaming(config, host, log)
    wait_for_apt(host, log, lock_timeout)
    log.info("upgrading %s" % ", ".join("%s %s -> %s" % (p, v[0], v[1]) for p, v in sorted(plan.items())))
    rc, out, err = apt_get(host, ["install", "--only-upgrade"] + ["%s=%s" % (p, v[1]) for p, v in sorted(plan.items())],
                           lock_timeout)
    if rc == 0 and healthy(host, config["url"], target, config.get("health_timeout", 180), log):
        for package, (old, new) in sorted(plan.items()):
            log.info("upgraded %s %s -> %s" % (package, old, new))
        return {"result": "upgraded", "from": plan[main][0], "to": target,
                "message": "%s %s -> %s, healthy" % (main, plan[main][0], target)}
    if rc != 0:
        log.error("apt-get install failed: %s" % tail(err or out))
    state.setdefault("bad_versions", {})[target] = host.now()
    return rollback_native(config, host, log, plan, main, target)


def rollback_native(config, host, log, plan, main, target):
    missing = [p for p in sorted(plan) if plan[p][0] not in apt_available(host, p)]
    if missing:
        message = "%s %s failed and the repository no longer has %s: Jellyfin needs a hand" % (
            main, target, ", ".join("%s %s" % (p, plan[p][0]) for p in missing))
        log.error(message)
        return {"result": "failed", "from": plan[main][0], "to": target, "message": message}
    log.warning("rolling back to %s" % ", ".join("%s %s" % (p, v[0]) for p, v in sorted(plan.items())))
    rc, out, err = apt_get(host, ["install", "--allow-downgrades"] + ["%s=%s" % (p, v[0]) for p, v in sorted(plan.items())],
                           config.get("lock_timeout", 600))
    back = rc == 0 and healthy(host, config["url"], plan[main][0], config.get("health_timeout", 180), log)
    if back:
        message = "%s %s failed its health check; rolled back to %s, which is healthy" % (main, target, plan[main][0])
        log.error(message)
        return {"result": "rolled_back", "from": plan[main][0], "to": target, "message": message}
    message = "%s %s failed its health check and the rollback to %s failed too%s: Jellyfin needs a hand" % (
        main, target, plan[main][0], (" (" + tail(err or out) + ")") if rc != 0 else "")
    log.error(message)
    return {"result": "failed", "from": plan[main][0], "to": target, "message": message}


# --- the Docker Compose upgrade ----------------------------------------------------------------------------------

def compose_command(host, configured):
    """`docker compose` (v2) when it answers, else docker-compose (v1, Debian 12's package)."""
    if configured:
        return list(configured)
    if host.run(["docker", "compose", "version"])[0] == 0:
        return ["docker", "compose"]
    if host.run(["docker-compose", "version"])[0] == 0:
        return ["docker-compose"]
    raise PatchError("neither `docker compose` nor docker-compose runs here")


def docker_inspect(host, what, name, template):
    rc, out, err = host.run(["docker", what, "inspect", "--format", template, name])
    if rc != 0:
        raise PatchError("docker %s inspect %s failed: %s" % (what, name, tail(err)))
    value = out.strip()
    return "" if value == "<no value>" else value


def image_name(host, image_id):
    """The image's repository digest when it has one (what a registry calls it), else its ID."""
    digests = docker_inspect(host, "image", image_id, "{{join .RepoDigests \" \"}}")
    return digests.split()[0] if digests else image_id


def patch_docker(config, host, log, state):
    docker = config["docker"]
    compose = compose_command(host, docker.get("compose_command")) + ["-f", docker["compose_file"]]
    cwd = os.path.dirname(docker["compose_file"])
    service = docker["service"]

    def compose_run(*args):
        rc, out, err = host.run(compose + list(args), cwd=cwd, timeout=3600)
        if rc != 0:
            raise PatchError("%s %s failed: %s" % (" ".join(compose[:-2]), " ".join(args), tail(err or out)))
        return out

    container = compose_run("ps", "-q", service).strip().splitlines()
    if not container:
        raise PatchError("service %s of %s is not running: nothing to patch" % (service, docker["compose_file"]))
    old_image = docker_inspect(host, "container", container[0], "{{.Image}}")
    ref = docker_inspect(host, "container", container[0], "{{.Config.Image}}")
    old_version = server_version(host, config["url"])
    compose_run("pull", service)
    new_image = docker_inspect(host, "image", ref, "{{.Id}}")
    if new_image == old_image:
        return {"result": "up_to_date", "message": "%s is the newest %s (Jellyfin %s)" % (
            image_name(host, old_image), ref, old_version or "not answering")}
    old_name, new_name = image_name(host, old_image), image_name(host, new_image)
    if new_image in state.get("bad_images", {}):
        # The tag points back at the running image, so a user's own `up` does not start the bad one either.
        host.run(["docker", "tag", old_image, ref])
        log.warning("%s failed its health check on %s: staying on %s until %s moves on" % (
            new_name, state["bad_images"][new_image], old_name, ref))
        return {"result": "held_back", "from": old_name, "to": new_name,
                "message": "%s is known bad here; %s stays" % (new_name, old_name)}
    wait_while_streaming(config, host, log)
    expect = docker_inspect(host, "image", new_image, "{{ index .Config.Labels \"%s\" }}" % VERSION_LABEL) or None
    log.info("recreating %s: %s -> %s" % (service, old_name, new_name))
    try:
        compose_run("up", "-d", "--no-deps", service)
        up = True
    except PatchError as err:
        log.error(str(err))
        up = False
    if up and healthy(host, config["url"], expect, config.get("health_timeout", 180), log):
        new_version = server_version(host, config["url"])
        log.info("upgraded %s %s (%s) -> %s (%s)" % (ref, old_name, old_version, new_name, new_version))
        return {"result": "upgraded", "from": old_name, "to": new_name,
                "message": "%s: Jellyfin %s -> %s, healthy" % (ref, old_version, new_version)}
    state.setdefault("bad_images", {})[new_image] = host.now()
    log.warning("rolling back %s to %s" % (service, old_name))
    host.run(["docker", "tag", old_image, ref])
    try:
        compose_run("up", "-d", "--no-deps", "--force-recreate", service)
        back = healthy(host, config["url"], old_version, config.get("health_timeout", 180), log)
    except PatchError as err:
        log.error(str(err))
        back = False
    if back:
        message = "%s failed its health check; rolled back to %s, which is healthy" % (new_name, old_name)
        log.error(message)
        return {"result": "rolled_back", "from": old_name, "to": new_name, "message": message}
    message = "%s failed its health check and the rollback to %s failed too: Jellyfin needs a hand" % (new_name, old_name)
    log.error(message)
    return {"result": "failed", "from": old_name, "to": new_name, "message": message}


# --- one run ---------------------------------------------------------------------------------------------------

def run(config, host, log):
    """One patch run: the result dict that also goes to the status file. Never raises for a failed step."""
    status_file = config["status_file"]
    state = read_status(status_file)
    started = host.now()
    try:
        if config["mode"] == "docker":
            result = patch_docker(config, host, log, state)
        else:
            result = patch_native(config, host, log, state)
    except PatchError as err:
        log.error(str(err))
        result = {"result": "failed", "message": str(err)}
    if result["result"] in ("up_to_date", "held_back"):
        log.info(result["message"])
    result.update({"mode": config["mode"], "started": started, "finished": host.now(),
                   "bad_versions": state.get("bad_versions", {}), "bad_images": state.get("bad_images", {}),
                   "last_upgrade": result["message"] if result["result"] == "upgraded" else state.get("last_upgrade")})
    write_status(status_file, result)
    return result
