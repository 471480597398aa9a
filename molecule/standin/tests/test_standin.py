"""The stand-in behaves like Jellyfin where the layers touch it, proven from a second container."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from labhosts import connect  # noqa: E402  pylint: disable=wrong-import-position

JELLYFIN = connect("standin-jellyfin")
CLIENT = connect("standin-client")
STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d\]"
NETWORK_XML = """<?xml version="1.0" encoding="utf-8"?>
<NetworkConfiguration>
  <KnownProxies>%s</KnownProxies>
</NetworkConfiguration>
"""


def ipv4(host):
    out = host.check_output("ip -4 -o addr show dev eth0")
    return re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out).group(1)


def login(user, password, forwarded_for=None):
    cmd = "jfclient login http://%s:8096 --user %s --password %s" % (ipv4(JELLYFIN), user, password)
    if forwarded_for:
        cmd += " --forwarded-for " + forwarded_for
    return json.loads(CLIENT.check_output(cmd))


def last_denied_line():
    lines = JELLYFIN.check_output("cat /var/log/jellyfin/jellyfin$(date +%Y%m%d).log").splitlines()
    return [line for line in lines if "has been denied" in line][-1]


def set_known_proxies(proxies):
    JELLYFIN.run_expect([0], "printf '%%s' '%s' > /etc/jellyfin/network.xml" % (
        NETWORK_XML % "".join("<string>%s</string>" % p for p in proxies)))
    JELLYFIN.run_expect([0], "systemctl restart jellyfin")
    JELLYFIN.run_expect([0], "for i in $(seq 1 20); do python3 -c \"import urllib.request as u; "
                             "u.urlopen('http://127.0.0.1:8096/health', timeout=2)\" 2>/dev/null && exit 0; sleep 0.5; done; exit 1")


def test_service_is_the_jellyfin_unit():
    assert JELLYFIN.service("jellyfin").is_running
    assert JELLYFIN.service("jellyfin").is_enabled
    assert JELLYFIN.socket("tcp://:::8096").is_listening or JELLYFIN.socket("tcp://0.0.0.0:8096").is_listening


def test_public_info_reports_the_version():
    info = json.loads(json.loads(CLIENT.check_output("jfclient get http://%s:8096 --path /System/Info/Public" % ipv4(JELLYFIN)))["body"])
    assert info["Version"] == "10.11.11"
    assert info["ProductName"] == "Jellyfin Server"


def test_wrong_password_is_401_and_logs_the_exact_debian_line():
    assert login("alice", "not-the-password")["status"] == 401
    assert re.fullmatch(STAMP + r' \[INF\] Authentication request for "alice" has been denied \(IP: "%s"\)\.'
                        % re.escape(ipv4(CLIENT)), last_denied_line())


def test_right_password_gives_a_token_for_the_api():
    result = login("alice", "alice-lab-password")
    assert result["status"] == 200
    token = json.loads(result["body"])["AccessToken"]
    me = json.loads(CLIENT.check_output("jfclient get http://%s:8096 --path /Users/Me --token %s" % (ipv4(JELLYFIN), token)))
    assert me["status"] == 200
    assert json.loads(CLIENT.check_output("jfclient get http://%s:8096 --path /Users/Me" % ipv4(JELLYFIN)))["status"] == 401


def test_forwarded_for_is_ignored_without_known_proxies():
    set_known_proxies([])
    login("alice", "wrong", forwarded_for="203.0.113.77")
    assert '(IP: "%s")' % ipv4(CLIENT) in last_denied_line()


def test_forwarded_for_is_the_client_when_the_peer_is_a_known_proxy():
    set_known_proxies([ipv4(CLIENT)])
    try:
        login("alice", "wrong", forwarded_for="203.0.113.77")
        assert '(IP: "203.0.113.77")' in last_denied_line()
    finally:
        set_known_proxies([])
