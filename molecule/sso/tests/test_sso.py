"""Single sign-on in front of Jellyfin, attacked from another container: real nginx, oauth2-proxy, provider."""

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time

import pytest

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SCENARIO, "..", "shared"))
from labhosts import addr, connect, tcp_open  # noqa: E402  pylint: disable=wrong-import-position

NGINX = connect("sso-nginx")
UPSTREAM = connect("sso-upstream")
ATTACKER = connect("sso-attacker")
PROXIES = {"sso-nginx": NGINX, "sso-upstream": UPSTREAM}
PROVIDER = "http://sso-idp:9400/oauth2/authorize"
FRIEND, STRANGER = "alice@friends.example", "mallory@elsewhere.example"
CLIENT_SECRET = "lab-client-secret-5d1e4b9a7c"


def sso(*args):
    return json.loads(ATTACKER.check_output("ssoclient " + " ".join(shlex.quote(a) for a in args)))


TOKENS = {}


def app_login(name, user="alice", password="alice-lab-password", count=1):
    """Log in as an app does (the Jellyfin API, no SSO): the statuses, and the last answer's body."""
    out = ATTACKER.check_output("jfclient login https://%s --insecure --user %s --password %s --count %d --timeout 3"
                                % (name, shlex.quote(user), shlex.quote(password), count))
    answers = [json.loads(line) for line in out.splitlines()]
    return [a["status"] for a in answers], answers[-1].get("body", "")


def token(name):
    """One app login per host for the whole module: every login POST counts against the rate limit."""
    if name not in TOKENS:
        statuses, body = app_login(name)
        assert statuses == [200], body
        TOKENS[name] = json.loads(body)["AccessToken"]
    return TOKENS[name]


def api(name, path, token=None):
    command = "jfclient get https://%s --insecure --path %s --timeout 3" % (name, shlex.quote(path))
    if token:
        command += " --token " + token
    return json.loads(ATTACKER.check_output(command))


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_friend_is_sent_to_the_provider_and_lands_on_jellyfin(name):
    result = sso("login", "https://" + name, "--email", FRIEND)
    first = result["hops"][0]
    assert first["status"] == 302, "the web UI answered without a session: %s" % result
    assert any(hop["url"].startswith(PROVIDER) for hop in result["hops"]), "never reached the provider: %s" % result
    assert result["status"] == 200 and 'id="reactRoot"' in result["body"], "did not land on the web UI: %s" % result


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_stranger_is_refused_after_the_provider(name):
    result = sso("login", "https://" + name, "--email", STRANGER)
    assert any(hop["url"].startswith(PROVIDER) for hop in result["hops"])
    assert result["status"] == 403, "an address outside the allowed emails got: %s" % result
    assert 'id="reactRoot"' not in result["body"]


@pytest.mark.parametrize("name", sorted(PROXIES))
@pytest.mark.parametrize("path", ["/web/", "/web", "/WEB/index.html", "/emby/web/index.html", "/MediaBrowser/Web/",
                                  "//web/index.html", "/%77eb/index.html", "/api-docs/swagger/index.html"])
def test_every_spelling_of_the_web_ui_needs_a_session(name, path):
    page = NGINX.check_output("curl -s http://127.0.0.1:8096" + path)
    assert "reactRoot" in page or "Swagger" in page, "the stand-in does not serve %s: this test would prove nothing" % path
    # oauth2-proxy answers an unclean path (//web/) with a redirect to the clean one first: follow those on the same host.
    url, hops = "https://%s%s" % (name, path), []
    for _hop in range(3):
        result = sso("get", url)
        hops.append(result)
        if result["status"] != 301 or not result["location"].startswith("/"):
            break
        url = "https://%s%s" % (name, result["location"])
    assert result["status"] == 302, "%s on %s answered without a session: %s" % (path, name, hops)
    assert "/oauth2/" in result["location"] or result["location"].startswith(PROVIDER), hops


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_apps_log_in_and_use_the_api_without_sso(name):
    me = api(name, "/Users/Me", token(name))
    assert me["status"] == 200 and json.loads(me["body"])["Name"] == "alice"
    anonymous = api(name, "/Users/Me")
    assert anonymous["status"] == 401 and "<html" not in anonymous["body"].lower(), \
        "an API call without a token must get Jellyfin's 401, got %s" % anonymous


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_websocket_goes_through_with_the_token(name):
    code = ("import socket,ssl; c=ssl._create_unverified_context(); s=c.wrap_socket(socket.create_connection(('%s',443),5));"
            "s.sendall(b'GET /socket?api_key=%s&deviceId=x HTTP/1.1\\r\\nHost: %s\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'); print(s.recv(4096).decode(errors='replace'))"
            ) % (name, token(name), name)
    answer = ATTACKER.check_output("python3 -c %s" % shlex.quote(code))
    assert answer.startswith("HTTP/1.1 101"), answer
    assert "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer


@pytest.mark.parametrize("path", ["/System/Restart", "/system/shutdown", "/emby/System/Restart", "/MEDIABROWSER/System/Shutdown"])
def test_restart_and_shutdown_only_from_the_admin_addresses(path):
    key = token("sso-nginx")
    direct = NGINX.check_output("curl -s -o /dev/null -w '%%{http_code}' -X POST -H 'X-Emby-Token: %s' http://127.0.0.1:8096%s" % (key, path))
    assert direct == "204", "the stand-in itself must accept %s, or the 403 below proves nothing" % path
    code = "jfclient get https://sso-nginx --insecure --path %s --token %s --timeout 3" % (path, key)
    assert json.loads(ATTACKER.check_output(code))["status"] == 403


def test_login_rate_limit_answers_429_and_leaves_gets_alone():
    token("sso-upstream")
    # 6 a minute with a burst of 3: at most 4 at once reach Jellyfin (fewer if an earlier login still counts).
    statuses, _body = app_login("sso-upstream", user="mallory", password="wrong", count=8)
    passed = statuses.index(429) if 429 in statuses else len(statuses)
    assert 1 <= passed <= 4 and statuses[:passed] == [401] * passed and statuses[passed:] == [429] * (8 - passed), statuses
    assert api("sso-upstream", "/System/Info/Public")["status"] == 200


def headers_of(name, path):
    code = ("import http.client,json,ssl; c=http.client.HTTPSConnection('%s',443,timeout=5,context=ssl._create_unverified_context());"
            "c.request('GET','%s'); r=c.getresponse(); print(json.dumps(dict(r.getheaders())))") % (name, path)
    return json.loads(ATTACKER.check_output("python3 -c %s" % shlex.quote(code)))


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_security_headers_and_plain_http_only_redirects(name):
    headers = headers_of(name, "/System/Info/Public")
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in headers["Content-Security-Policy"]
    assert headers["Server"] == "nginx", "nginx must not tell its version"
    redirect = sso("get", "http://%s/Users/Me?api_key=x" % name)
    assert redirect["status"] == 301 and redirect["location"] == "https://%s/Users/Me?api_key=x" % name, redirect


def test_strict_policy_puts_the_api_behind_sso_too():
    key = token("sso-nginx")
    try:
        run = converge("sso-nginx", {"jellyfin_hardening_sso_path_policy": "strict"})
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
        for path in ("/Users/Me", "/System/Info/Public", "/Users/AuthenticateByName", "/socket"):
            result = sso("get", "https://sso-nginx%s?api_key=%s" % (path, key))
            assert result["status"] == 302 and "/oauth2/sign_in" in result["location"], (path, result)
        login = sso("login", "https://sso-nginx", "--email", FRIEND)
        assert login["status"] == 200 and 'id="reactRoot"' in login["body"], login
    finally:
        run = converge("sso-nginx", {})
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert api("sso-nginx", "/Users/Me", key)["status"] == 200


def test_jellyfins_own_port_is_off_the_network():
    for name, host in PROXIES.items():
        assert host.check_output("curl -s http://127.0.0.1:8096/health") == "Healthy"
        assert not tcp_open(ATTACKER, host, 8096), "Jellyfin's port answers on %s's network" % name


def test_access_log_masks_tokens_and_passwords():
    for path in ("/Items?api_key=SECRETAAA&x=1&ApiKey=SECRETBBB", "/Users/abc/Authenticate?pw=SECRETCCC"):
        api("sso-nginx", path)
    log = NGINX.check_output("cat /var/log/nginx/jellyfin-access.log /var/log/nginx/jellyfin-error.log")
    assert "api_key=***" in log and "ApiKey=***" in log and "pw=***" in log
    assert "SECRET" not in log, "a secret reached nginx's logs"
    assert "SECRET" not in NGINX.check_output("journalctl -u oauth2-proxy --no-pager")


def test_fail2ban_bans_the_client_not_the_proxy():
    NGINX.run_expect([0], "fail2ban-client unban --all")
    try:
        out = ATTACKER.check_output("jfclient login https://sso-nginx --insecure --user mallory --password wrong "
                                    "--forwarded-for 198.51.100.77 --count 3 --timeout 3")
        assert [json.loads(line)["status"] for line in out.splitlines()] == [401] * 3
        banned = []
        for _attempt in range(40):
            data = json.loads(NGINX.check_output("nft -j list set inet jellyfin_hardening f2b_jellyfin_v4"))
            banned = [e for obj in data["nftables"] for e in obj.get("set", {}).get("elem", [])]
            if banned:
                break
            time.sleep(0.5)
        assert banned == [addr(ATTACKER)], "banned %s, expected the attacker %s only" % (banned, addr(ATTACKER))
        assert api("sso-nginx", "/System/Info/Public")["status"] is None, "the banned client still reaches 443"
    finally:
        NGINX.run("fail2ban-client unban --all")


def test_oauth2_proxy_runs_sandboxed_on_loopback_only():
    for host in PROXIES.values():
        props = dict(line.split("=", 1) for line in host.check_output(
            "systemctl show oauth2-proxy -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp -p ActiveState").splitlines())
        assert props == {"User": "oauth2-proxy", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                         "PrivateTmp": "yes", "ActiveState": "active"}, props
        listening = host.check_output("ss -Hltn 'sport = :4180'")
        assert listening and all(" 127.0.0.1:4180 " in line for line in listening.splitlines()), listening
        assert host.check_output("oauth2-proxy --version").startswith("oauth2-proxy v7.15.6")


def secret_state(host):
    digest = hashlib.sha256(host.check_output("cat /etc/oauth2-proxy/cookie-secret").encode()).hexdigest()
    modes = host.check_output("stat -c '%a %U %n' /etc/oauth2-proxy/cookie-secret /etc/oauth2-proxy/client-secret "
                              "/etc/nginx/jellyfin-hardening-tls/self-signed.key")
    return digest, modes


def test_secrets_stay_on_the_host_and_out_of_the_play_output():
    before = {name: secret_state(host) for name, host in PROXIES.items()}
    cookie_secrets = {name: host.check_output("cat /etc/oauth2-proxy/cookie-secret") for name, host in PROXIES.items()}
    run = subprocess.run(["ansible-playbook", "-v", "-i", INVENTORY, os.path.join(SCENARIO, "converge.yml")],
                         capture_output=True, text=True, timeout=1200, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert "changed=0" in output and "changed=1" not in output
    for name, secret in cookie_secrets.items():
        assert len(secret) == 43 and secret not in output, "the cookie secret of %s is in the play output" % name
    assert CLIENT_SECRET not in output, "the client secret is in the play output"
    after = {name: secret_state(host) for name, host in PROXIES.items()}
    assert after == before, "a second converge changed a secret or its mode"
    for name, (_digest, modes) in after.items():
        assert modes.splitlines()[0].startswith("600 oauth2-proxy") and modes.splitlines()[1].startswith("600 oauth2-proxy")
        assert modes.splitlines()[2].startswith("600 root")
    for host in PROXIES.values():
        readable = host.run("grep -rlF %s /etc /opt /var/log /run /tmp /var/lib 2>/dev/null" % CLIENT_SECRET).stdout.split()
        world = [f for f in readable if int(host.check_output("stat -c %%a %s" % f)[-1]) & 4]
        assert world == [], "world-readable files hold the client secret: %s" % world


def test_caddy_equivalent_is_valid_and_enforces_the_same_rules():
    host = UPSTREAM
    # Debian's caddy would start on port 80, which nginx holds: installed without starting it.
    host.run_expect([0], "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && "
                         "DEBIAN_FRONTEND=noninteractive apt-get install -y -q caddy >/dev/null; rc=$?; rm -f /usr/sbin/policy-rc.d; exit $rc")
    # The rendered file as it is, on another port and without the HTTP redirect (nginx holds 443 and 80 here).
    host.run_expect([0], "mkdir -p /var/log/caddy && { printf '{\\n\\tauto_https disable_redirects\\n}\\n'; "
                         "sed 's/^sso-upstream {/sso-upstream:8443 {/' /etc/jellyfin-hardening/reverse-proxy/Caddyfile; } > /tmp/Caddyfile")
    check = host.run("caddy validate --adapter caddyfile --config /tmp/Caddyfile")
    assert check.rc == 0, check.stderr
    host.run_expect([0], "systemd-run --unit lab-caddy caddy run --adapter caddyfile --config /tmp/Caddyfile")
    try:
        for _attempt in range(40):
            if host.run("curl -sk -o /dev/null https://127.0.0.1:8443/ -H 'Host: sso-upstream'").rc == 0:
                break
            time.sleep(0.5)
        web = sso("get", "https://sso-upstream:8443/emby/WEB/index.html")
        assert web["status"] == 302 and "/oauth2/sign_in" in web["location"], web
        assert sso("get", "https://sso-upstream:8443/System/Restart")["status"] == 403
        assert sso("get", "https://sso-upstream:8443/System/Info/Public")["status"] == 200
    finally:
        host.run("systemctl stop lab-caddy")


def converge(limit, extra_vars):
    return subprocess.run(["ansible-playbook", "-i", INVENTORY, "--limit", limit, os.path.join(SCENARIO, "converge.yml"),
                           "-e", json.dumps(extra_vars)], capture_output=True, text=True, timeout=900, check=False)


def config_digest(host):
    return host.check_output("sha256sum /etc/oauth2-proxy/oauth2-proxy.cfg /etc/nginx/sites-available/jellyfin-hardening.conf "
                             "/etc/nginx/conf.d/jellyfin-hardening.conf")


@pytest.mark.parametrize("extra_vars, named", [
    ({"oauth2_proxy_allowed_emails": ["alice@friends.example", "not-an-address"]}, "not-an-address"),
    ({"oauth2_proxy_listen_address": "0.0.0.0:4180"}, "0.0.0.0:4180"),
    ({"jellyfin_hardening_sso_path_policy": "custom", "jellyfin_hardening_sso_protected_paths": ["^/web/(x"]}, "^/web/(x"),
    ({"reverse_proxy_tls_self_signed": False}, "reverse_proxy_tls_certificate"),
])
def test_bad_settings_fail_before_anything_is_touched(extra_vars, named):
    before = config_digest(UPSTREAM)
    run = converge("sso-upstream", extra_vars)
    assert run.returncode != 0, "a bad setting was accepted: %s" % extra_vars
    assert named in run.stdout + run.stderr, "the error does not name %r: %s" % (named, (run.stdout + run.stderr)[-2000:])
    assert config_digest(UPSTREAM) == before


def test_a_configuration_nginx_refuses_is_taken_back():
    before = config_digest(UPSTREAM)
    # Passes the role's checks, fails nginx's own: the site is written, nginx -t refuses it.
    run = converge("sso-upstream", {"reverse_proxy_client_max_body_size": "20X"})
    assert run.returncode != 0 and "nginx refused the new configuration" in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]
    assert config_digest(UPSTREAM) == before
    UPSTREAM.run_expect([0], "nginx -t")
    assert api("sso-upstream", "/System/Info/Public")["status"] == 200
