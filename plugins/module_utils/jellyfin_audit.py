# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.jellyfin_hardening
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a Jellyfin host stands: what the audit reads (read-only) and the findings it draws, most risky first.

collect() only reads files and runs read-only commands; findings() is pure, so the unit tests give it states.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import glob
import ipaddress
import json
import os
import re
import time
import xml.etree.ElementTree as ET

from urllib.parse import urlsplit

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import detect, jellyfin_patching

RISK_ORDER = {"high": 0, "medium": 1, "low": 2}
# What a synthetic failed login looks like in Jellyfin's file log (docs: notes on Jellyfin's log format).
SYNTHETIC_IP = "203.0.113.7"
STATE_DIR = "/var/lib/jellyfin-hardening"
ETC_DIR = "/etc/jellyfin-hardening"
FAIL2BAN_LAYER = os.path.join(ETC_DIR, "firewall", "layers.d", "30-fail2ban.json")
# The patching role's unattended-upgrades settings (security origins only).
HOST_UPDATES_CONFIG = "/etc/apt/apt.conf.d/52jellyfin-hardening-unattended-upgrades"


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _age(path_pattern, now):
    """Seconds since the newest file matching the pattern changed, or None."""
    times = [os.path.getmtime(p) for p in glob.glob(path_pattern)]
    return round(now - max(times)) if times else None


def _http_get(opener, url, timeout):
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read(65536).decode("utf-8", "replace")
    except Exception as err:  # pylint: disable=broad-except  # any failure means "does not answer"
        return getattr(err, "code", None), ""


def _listeners(port):
    """Addresses a TCP port listens on (ss)."""
    found = []
    for line in (detect.run_output(["ss", "-ltnH"]) or "").splitlines():
        fields = line.split()
        if len(fields) >= 4:
            address, _sep, lport = fields[3].rpartition(":")
            if lport == str(port):
                found.append(address.strip("[]"))
    return sorted(set(found))


def _is_loopback(address):
    if address in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def _known_proxies(network_xml):
    try:
        root = ET.parse(network_xml).getroot()
    except (OSError, ET.ParseError):
        return None
    node = root.find("KnownProxies")
    return [] if node is None else [s.text.strip() for s in node.findall("string") if s.text]


def _fail2ban(now):
    status = detect.run_output(["fail2ban-client", "status"])
    jails = re.search(r"Jail list:\s*(.*)", status or "")
    jails = [j.strip() for j in jails.group(1).split(",") if j.strip()] if jails else []
    stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000 +00:00")
    line = '[%s] [INF] Authentication request for "audit" has been denied (IP: "%s").' % (stamp, SYNTHETIC_IP)
    regex = detect.run_output(["fail2ban-regex", line, "/etc/fail2ban/filter.d/jellyfin.conf"], timeout=30) if jails else None
    return {"in_force": "jellyfin" in jails or os.path.exists(FAIL2BAN_LAYER), "running": status is not None, "jails": jails,
            "filter_matches": bool(regex and re.search(r"\b1 matched\b", regex))}


def _blocklist(set_counts, now):
    config = _read_json(os.path.join(ETC_DIR, "blocklist", "lists.json")) or {}
    lists = []
    for entry in config.get("lists", []):
        name = entry.get("name", "")
        entries = sum(v for k, v in set_counts.items() if k in (name + "_v4", name + "_v6", "jfh_" + name + "_v4", "jfh_" + name + "_v6"))
        lists.append({"name": name, "entries": entries,
                      "refreshed_seconds_ago": _age(os.path.join(entry.get("cache_dir", ""), name, "*"), now)})
    return {"in_force": bool(lists), "lists": lists}


def _allowlist(now):
    states = {}
    for path in sorted(glob.glob(os.path.join(STATE_DIR, "*.json"))):
        data = _read_json(path)
        if isinstance(data, dict) and "names" in data and "updated" in data:
            states[os.path.basename(path)[:-5]] = data
    if not states:
        return {"in_force": False, "names": [], "unresolved": [], "synced_seconds_ago": None}
    names, unresolved, updated = [], [], []
    for data in states.values():
        updated.append(data.get("updated") or 0)
        for name, families in sorted(data["names"].items()):
            names.append(name)
            if not any((families.get(f) or {}).get("addresses") for f in ("v4", "v6")):
                unresolved.append(name)
    return {"in_force": True, "names": names, "unresolved": unresolved, "synced_seconds_ago": round(now - max(updated))}


def _wireguard(now):
    interfaces, peers = [], []
    for line in (detect.run_output(["wg", "show", "all", "dump"]) or "").splitlines():
        fields = line.split("\t")
        if len(fields) == 5:
            interfaces.append(fields[0])
        elif len(fields) >= 9:
            handshake = int(fields[5]) if fields[5].isdigit() else 0
            peers.append({"interface": fields[0], "public_key": fields[1][:8] + "...", "allowed_ips": fields[4],
                          "handshake_seconds_ago": round(now - handshake) if handshake else None})
    configured = sorted(os.path.basename(p)[:-5] for p in glob.glob("/etc/wireguard/*.conf"))
    return {"in_force": bool(interfaces), "configured": configured, "interfaces": interfaces, "peers": peers,
            "vpn_only": bool(glob.glob(os.path.join(ETC_DIR, "firewall", "layers.d", "45-wireguard-*.json")))}


def url_port(url):
    """The URL's port, or Jellyfin's 8096 when it names none. ValueError for a port out of range."""
    return urlsplit(url).port or 8096


def collect(jellyfin_url, network_xml, set_counts, opener, timeout=5, now=None):
    """Everything the findings need, read from this host."""
    now = time.time() if now is None else now
    status, body = _http_get(opener, jellyfin_url.rstrip("/") + "/System/Info/Public", timeout)
    info = {}
    if status == 200:
        try:
            info = json.loads(body)
        except ValueError:
            info = {}
    firewall = _read_json(os.path.join(ETC_DIR, "firewall", "firewall.json")) or {}
    port = url_port(jellyfin_url)
    sso_status, _body = _http_get(opener, "http://127.0.0.1:4180/ping", timeout)
    patching = _read_json(os.path.join(STATE_DIR, "patching", "status.json"))
    return {
        "jellyfin": {"url": jellyfin_url, "answers": status == 200, "version": info.get("Version"),
                     "listens_on": _listeners(port), "port": port},
        "firewall": {"backend": firewall.get("backend"), "public_ports": firewall.get("jellyfin_ports", []),
                     "layers": sorted(os.path.basename(p) for p in glob.glob(os.path.join(ETC_DIR, "firewall", "layers.d", "*.json")))},
        "known_proxies": _known_proxies(network_xml),
        "fail2ban": _fail2ban(now),
        "blocklist": _blocklist(set_counts, now),
        "allowlist": _allowlist(now),
        "wireguard": _wireguard(now),
        "sso": {"in_force": os.path.exists("/etc/systemd/system/oauth2-proxy.service") or sso_status is not None,
                "answers": sso_status == 200},
        "reverse_proxy": {"in_force": bool(glob.glob("/etc/nginx/sites-enabled/jellyfin*"))},
        "patching": {"jellyfin": os.path.exists(os.path.join(ETC_DIR, "patching", "patching.json")),
                     "host_security_updates": os.path.exists(HOST_UPDATES_CONFIG),
                     "last_result": (patching or {}).get("result"), "last_message": (patching or {}).get("message")},
    }


def findings(state, floor, stale_after=86400):
    """(risk, finding, what to do), most risky first."""
    found = []
    jf = state["jellyfin"]
    restricted = state["allowlist"]["in_force"] or state["wireguard"]["vpn_only"]
    if not jf["answers"]:
        found.append(("high", "Jellyfin does not answer at %s" % jf["url"], "start Jellyfin, or set jellyfin_hardening_jellyfin_url"))
    elif not jf["version"] or jellyfin_patching.below(jf["version"], floor):
        found.append(("high", "Jellyfin %s is below the security floor %s" % (jf["version"], floor),
                      "upgrade now; the patching layer keeps it current"))
    public = [a for a in jf["listens_on"] if not _is_loopback(a)]
    if public and not restricted:
        found.append(("high", "Jellyfin's port %d listens on %s with no allowlist or VPN in front of it" % (jf["port"], ", ".join(public)),
                      "the reverse proxy's loopback-only setting, the VPN, or the allowlist"
                      + (" (SSO can be bypassed on this port)" if state["sso"]["in_force"] else "")))
    if not state["firewall"]["layers"] and not state["firewall"]["backend"]:
        found.append(("high", "no firewall model on this host", "apply the site playbook"))
    f2b = state["fail2ban"]
    if f2b["in_force"] and not ("jellyfin" in f2b["jails"] and f2b["filter_matches"]):
        found.append(("medium", "fail2ban is set up but its jellyfin jail is %s" % (
            "not loaded" if "jellyfin" not in f2b["jails"] else "not matching a failed login"), "systemctl status fail2ban; fail2ban-client status jellyfin"))
    for entry in state["blocklist"]["lists"]:
        if not entry["entries"]:
            found.append(("medium", "block list %s is empty in the kernel" % entry["name"], "systemctl start jellyfin-hardening-blocklist"))
        elif entry["refreshed_seconds_ago"] is None or entry["refreshed_seconds_ago"] > stale_after:
            found.append(("medium", "block list %s was not refreshed for %s" % (entry["name"], _duration(entry["refreshed_seconds_ago"])),
                          "journalctl -u jellyfin-hardening-blocklist"))
    allow = state["allowlist"]
    if allow["in_force"]:
        if allow["unresolved"]:
            found.append(("medium", "allowlist names that do not resolve: %s" % ", ".join(allow["unresolved"]),
                          "check the friends' DDNS clients; their last addresses are kept for a while"))
        if allow["synced_seconds_ago"] is not None and allow["synced_seconds_ago"] > 3600:
            found.append(("medium", "the allowlist was not synced for %s" % _duration(allow["synced_seconds_ago"]),
                          "journalctl -u jellyfin-hardening-allowlist"))
    if state["sso"]["in_force"] and not state["sso"]["answers"]:
        found.append(("medium", "oauth2-proxy does not answer on 127.0.0.1:4180: the web UI fails closed", "systemctl status oauth2-proxy"))
    proxies = state["known_proxies"]
    if state["reverse_proxy"]["in_force"] and not (proxies and ("127.0.0.1" in proxies or "::1" in proxies)):
        found.append(("medium", "nginx is in front of Jellyfin but KnownProxies (%s) does not list it" % (", ".join(proxies or []) or "none"),
                      "Jellyfin logs and rate-limits the proxy instead of the client; reverse_proxy_manage_known_proxies"))
    if state["patching"]["last_result"] in ("failed", "rolled_back"):
        outcome = state["patching"]["last_result"].replace("_", " ")
        found.append(("medium", "the last Jellyfin upgrade %s: %s" % (outcome, state["patching"]["last_message"]), "see patching.log"))
    if not state["patching"]["jellyfin"] and not state["patching"]["host_security_updates"]:
        found.append(("medium", "automated patching is off", "jellyfin_hardening_patching: true"))
    elif not state["patching"]["host_security_updates"]:
        found.append(("medium", "the host gets no automatic security updates", "patching_host_security_updates: true"))
    if not restricted and not state["wireguard"]["in_force"]:
        found.append(("low", "Jellyfin is open to the whole internet (no VPN, no allowlist)", "the VPN is the best option if your users can run it"))
    if not state["sso"]["in_force"] and not restricted:
        found.append(("low", "no single sign-on before the web UI", "jellyfin_hardening_sso: true"))
    return sorted(found, key=lambda f: RISK_ORDER[f[0]])


def _duration(seconds):
    if seconds is None:
        return "ever"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return "%d %s" % (seconds // size, unit)
    return "%d s" % seconds


def layers(state):
    """Layer name -> in force and healthy, for the table."""
    f2b, allow = state["fail2ban"], state["allowlist"]
    peers = state["wireguard"]["peers"]
    shaken = sum(1 for p in peers if p["handshake_seconds_ago"] is not None)
    unresolved = ", ".join(allow["unresolved"]) or "none"
    matches = "matches" if f2b["filter_matches"] else "does not match"
    return {
        "vpn": {"in_force": state["wireguard"]["in_force"], "healthy": bool(state["wireguard"]["interfaces"]),
                "detail": "peers: %d, with a handshake: %d" % (len(peers), shaken)},
        "allowlist": {"in_force": allow["in_force"], "healthy": allow["in_force"] and not allow["unresolved"],
                      "detail": "%d names, unresolved: %s, synced %s ago" % (len(allow["names"]), unresolved, _duration(allow["synced_seconds_ago"]))},
        "sso": {"in_force": state["sso"]["in_force"], "healthy": state["sso"]["answers"], "detail": "oauth2-proxy answers"
                if state["sso"]["answers"] else "oauth2-proxy does not answer"},
        "reverse_proxy": {"in_force": state["reverse_proxy"]["in_force"], "healthy": state["reverse_proxy"]["in_force"],
                          "detail": "KnownProxies: %s" % (", ".join(state["known_proxies"] or []) or "none")},
        "fail2ban": {"in_force": f2b["in_force"], "healthy": "jellyfin" in f2b["jails"] and f2b["filter_matches"],
                     "detail": "jails: %s; a synthetic failed login %s" % (", ".join(f2b["jails"]) or "none", matches)},
        "blocklist": {"in_force": state["blocklist"]["in_force"],
                      "healthy": bool(state["blocklist"]["lists"]) and all(e["entries"] for e in state["blocklist"]["lists"]),
                      "detail": "; ".join("%s: %d entries, refreshed %s ago" % (e["name"], e["entries"], _duration(e["refreshed_seconds_ago"]))
                                          for e in state["blocklist"]["lists"]) or "no lists"},
        "patching": {"in_force": state["patching"]["jellyfin"] or state["patching"]["host_security_updates"],
                     "healthy": state["patching"]["last_result"] not in ("failed", "rolled_back"),
                     "detail": "Jellyfin: %s; host security updates: %s" % (
                         "last run %s" % (state["patching"]["last_result"] or "not yet") if state["patching"]["jellyfin"] else "not managed",
                         "on" if state["patching"]["host_security_updates"] else "off")},
    }
