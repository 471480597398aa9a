# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load one named block list into its firewall-model sets in one atomic step.

The one implementation: the module ip_blocklist and the host-side refresher (the blocklist role's
timer, cron job and boot restore) all call apply(). Nothing in force changes unless every source gave
a usable list (fresh, or its last good copy from the cache) and the result passes the sanity limits.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from urllib.error import URLError
from urllib.parse import urlparse
from urllib.request import Request, build_opener

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist_entries as entries
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import firewall_model, hostlock, ipt, model_sets, nft

BACKENDS = ("nftables", "ipset")
FAMILY_CHOICES = {"both": ("v4", "v6"), "ipv4": ("v4",), "ipv6": ("v6",)}
EXCLUDE_DEFAULTS = ("private", "loopback", "link_local", "host_addresses")
SCHEMES = ("https", "http", "file")
DEFAULT_CACHE_DIR = "/var/cache/jellyfin-hardening/blocklist"
LOCK_FILE = "/run/lock/jellyfin-hardening-blocklist.lock"
MAX_BYTES = 64 * 1024 * 1024
DEFAULTS = {"backend": "nftables", "family": "both", "exclude": [], "exclude_defaults": list(EXCLUDE_DEFAULTS),
            "min_entries": 1, "max_change_ratio": 0.3, "cache_dir": DEFAULT_CACHE_DIR, "timeout": 30, "state": "present"}


class BlocklistError(RuntimeError):
    """The list was not loaded; the set in force is unchanged. The message says why."""


def check_config(config):
    """Validate one list's settings (module options or the refresher's lists.json entry); fill defaults."""
    conf = dict(DEFAULTS, **{k: v for k, v in config.items() if v is not None})
    unknown = set(conf) - set(DEFAULTS) - {"name", "sources"}
    if unknown:
        raise BlocklistError("unknown settings: %s" % ", ".join(sorted(unknown)))
    if not firewall_model.SET_NAME.match(str(conf.get("name", ""))):
        raise BlocklistError("name %r: use 1-24 lowercase letters, digits or '_', starting with a letter" % (conf.get("name"),))
    if conf["backend"] not in BACKENDS:
        raise BlocklistError("backend %r is not one of %s" % (conf["backend"], ", ".join(BACKENDS)))
    if conf["family"] not in FAMILY_CHOICES:
        raise BlocklistError("family %r is not one of %s" % (conf["family"], ", ".join(FAMILY_CHOICES)))
    if conf["state"] not in ("present", "absent"):
        raise BlocklistError("state %r is not present or absent" % (conf["state"],))
    sources = conf.get("sources") or []
    if conf["state"] == "present" and not sources:
        raise BlocklistError("list %s has no sources" % conf["name"])
    for url in sources:
        parsed = urlparse(str(url))
        if parsed.scheme not in SCHEMES or not (parsed.netloc or parsed.scheme == "file") or not parsed.path:
            raise BlocklistError("source %r is not an https, http or file URL" % (url,))
    bad = set(conf["exclude_defaults"]) - set(EXCLUDE_DEFAULTS)
    if bad:
        raise BlocklistError("exclude_defaults %s: choose from %s" % (sorted(bad), ", ".join(EXCLUDE_DEFAULTS)))
    for family in entries.FAMILIES:
        try:
            entries.exclusions(conf["exclude"], family)
        except ValueError as err:
            raise BlocklistError(str(err))
    if isinstance(conf["min_entries"], bool) or not isinstance(conf["min_entries"], int) or conf["min_entries"] < 1:
        raise BlocklistError("min_entries %r must be a whole number of at least 1" % (conf["min_entries"],))
    if not isinstance(conf["max_change_ratio"], (int, float)) or not 0 <= conf["max_change_ratio"] <= 1:
        raise BlocklistError("max_change_ratio %r must be between 0 and 1" % (conf["max_change_ratio"],))
    if not isinstance(conf["timeout"], int) or not 0 < conf["timeout"] <= 600:
        raise BlocklistError("timeout %r must be 1-600 seconds" % (conf["timeout"],))
    conf["sources"] = list(sources)
    return conf


# ---- sources -------------------------------------------------------------------------------------

def fetch(url, timeout):
    """The body of a source as text; BlocklistError names the URL and the failure."""
    parsed = urlparse(url)
    try:
        if parsed.scheme == "file":
            with open(parsed.path, "rb") as handle:
                body = handle.read(MAX_BYTES + 1)
        else:
            # Not ansible.module_utils.urls: the host-side refresher runs this without Ansible installed.
            request = Request(url, headers={"User-Agent": "homelab.jellyfin_hardening ip_blocklist"})
            with build_opener().open(request, timeout=timeout) as response:
                body = response.read(MAX_BYTES + 1)
    except (URLError, OSError, ValueError) as err:
        raise BlocklistError("%s: %s" % (url, getattr(err, "reason", err)))
    if len(body) > MAX_BYTES:
        raise BlocklistError("%s: larger than %d MiB" % (url, MAX_BYTES // 1048576))
    return body.decode("utf-8", "replace")


def cache_path(cache_dir, name, url):
    return os.path.join(cache_dir, name, hashlib.sha256(url.encode("utf-8")).hexdigest()[:16] + ".list")


def _read_cache(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def gather(conf, offline=False):
    """Parse every source: fresh, or the cached last good copy when the download fails or is refused.

    Returns (parsed lists, sources used, sources failed, fresh texts to cache after the load).
    """
    parsed, used, failed, fresh = [], [], [], {}
    for url in conf["sources"]:
        path = cache_path(conf["cache_dir"], conf["name"], url)
        text = None
        if not offline:
            try:
                text = fetch(url, conf["timeout"])
                parsed.append(entries.parse(text, url))
                used.append({"url": url, "from": "download"})
                fresh[path] = text
                continue
            except (BlocklistError, entries.ListError) as err:
                failed.append({"url": url, "error": str(err)})
        cached = _read_cache(path)
        if cached is None:
            why = "no cached copy to use instead" if not offline else "no cached copy (offline run)"
            raise BlocklistError("source %s failed and has %s: the set in force is unchanged%s"
                                 % (url, why, "; " + failed[-1]["error"] if failed and failed[-1]["url"] == url else ""))
        parsed.append(entries.parse(cached, "cached copy of " + url))
        used.append({"url": url, "from": "cache"})
    return parsed, used, failed, fresh


def _write_cache(path, text):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    if _read_cache(path) == text:
        return
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".list.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def host_addresses():
    """This host's own addresses (never blocked: a list that names them would cut the host off itself)."""
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise BlocklistError("cannot read this host's addresses (ip -j addr show): %s" % err)
    return [info["local"] for link in json.loads(out) for info in link.get("addr_info", []) if "local" in info]


def excluded_networks(conf):
    result = list(conf["exclude"])
    for name in conf["exclude_defaults"]:
        result += host_addresses() if name == "host_addresses" else entries.DEFAULT_EXCLUDES[name]
    return result


# ---- the kernel ----------------------------------------------------------------------------------

# ---- the one entry point -------------------------------------------------------------------------

def apply(config, check_mode=False, offline=False, lock_file=LOCK_FILE, want_diff=False):
    """Bring one list's sets to what its sources say now. Raises BlocklistError with nothing changed."""
    conf = check_config(config)
    if check_mode:
        return _apply(conf, check_mode, offline, want_diff)
    try:
        with hostlock.Lock(lock_file, what="block list run"):
            return _apply(conf, check_mode, offline, want_diff)
    except hostlock.LockTimeout as err:
        raise BlocklistError(str(err))


def _apply(conf, check_mode, offline, want_diff):
    try:
        current = model_sets.read_sets(conf["name"], conf["backend"])
    except (nft.NftError, ipt.IptError) as err:
        raise BlocklistError(str(err))
    missing = [f for f, cidrs in current.items() if cidrs is None]
    if missing and not check_mode:
        raise BlocklistError("the %s set of list %s does not exist (%s): apply the blocklist role, which declares it in the firewall model"
                             % (conf["backend"], conf["name"], ", ".join(firewall_model.set_names(conf["name"], conf["backend"])[f] for f in missing)))
    current = {f: cidrs or [] for f, cidrs in current.items()}
    used, failed, fresh, invalid = [], [], {}, []
    if conf["state"] == "absent":
        wanted = {f: [] for f in current}
    else:
        parsed, used, failed, fresh = gather(conf, offline)
        invalid = [bad for _ranges, bad_lines in parsed for bad in bad_lines]
        wanted = entries.build([ranges for ranges, _bad in parsed], excluded_networks(conf), FAMILY_CHOICES[conf["family"]])
        total = sum(len(v) for v in wanted.values())
        if total < conf["min_entries"]:
            raise BlocklistError("list %s would hold %d entries, fewer than min_entries %d: refused, the set in force is unchanged"
                                 % (conf["name"], total, conf["min_entries"]))
        before = sum(len(v) for v in current.values())
        if before and (before - total) > conf["max_change_ratio"] * before:
            raise BlocklistError("list %s would shrink from %d to %d entries, more than max_change_ratio %s allows: refused, "
                                 "the set in force is unchanged" % (conf["name"], before, total, conf["max_change_ratio"]))
    result = {"name": conf["name"], "backend": conf["backend"], "sources_used": used, "sources_failed": failed,
              "invalid": len(invalid), "invalid_sample": invalid[:10], "entries": {}, "added": {}, "removed": {}}
    changed, changes = False, {}
    for family in sorted(wanted):
        old, new = set(current[family]), set(wanted[family])
        changes[family] = (sorted(old - new), sorted(new - old)) if want_diff else None
        result["entries"][family] = len(new)
        result["added"][family] = len(new) - len(new & old)
        result["removed"][family] = len(old) - len(new & old)
        changed = changed or old != new
    result["changed"] = changed
    if want_diff:
        result["diff"] = diff(conf, current, wanted, changes)
    if check_mode:
        return result
    if changed:
        try:
            model_sets.write_sets(conf["name"], conf["backend"], wanted)
        except (nft.NftError, ipt.IptError) as err:
            raise BlocklistError("loading list %s failed, the set in force is unchanged: %s" % (conf["name"], err))
    if conf["state"] == "absent":
        shutil.rmtree(os.path.join(conf["cache_dir"], conf["name"]), ignore_errors=True)
    for path, text in fresh.items():
        _write_cache(path, text)
    return result


def diff(conf, current, wanted, changes, limit=100):
    """Ansible's diff: the entries removed (before) and added (after), at most `limit` of each per set."""
    names = firewall_model.set_names(conf["name"], conf["backend"])
    before, after = [], []
    for family in sorted(wanted):
        removed, added = changes[family]
        for lines, items, count in ((before, removed, len(current[family])), (after, added, len(wanted[family]))):
            lines.append("# %s: %d entries" % (names[family], count))
            lines += items[:limit]
            if len(items) > limit:
                lines.append("# ... and %d more" % (len(items) - limit))
    return {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n",
            "before_header": "%s (removed)" % conf["name"], "after_header": "%s (added)" % conf["name"]}
