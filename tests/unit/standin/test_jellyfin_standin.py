"""The Jellyfin stand-in behaves as the notes say Jellyfin does (loopback only)."""

import importlib.util
import json
import pathlib
import re
import socket
import threading
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SPEC = importlib.util.spec_from_file_location("jellyfin_standin", ROOT / "tests/standin/jellyfin_standin.py")
standin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(standin)

CLIENT = 'MediaBrowser Client="t", Device="d", DeviceId="id1", Version="1"'
STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d\]"


@pytest.fixture(name="jellyfin")
def fixture_jellyfin(tmp_path):
    started = []

    def start(log_format="debian", known_proxies=(), lockout=-1, api_keys=()):
        xml = "<NetworkConfiguration><KnownProxies>%s</KnownProxies></NetworkConfiguration>" % "".join(
            "<string>%s</string>" % p for p in known_proxies)
        (tmp_path / "network.xml").write_text(xml)
        config = {"log_format": log_format, "log_dir": str(tmp_path / "log"), "network_xml": str(tmp_path / "network.xml"),
                  "users": [{"name": "alice", "password": "s3cret", "login_attempts_before_lockout": lockout}],
                  "api_keys": list(api_keys)}
        app = standin.Server(config)
        server = standin.make_server(app, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return "http://127.0.0.1:%d" % server.server_address[1], tmp_path / "log"

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def call(url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def login(base, user, password, **headers):
    return call(base + "/Users/AuthenticateByName", {"Username": user, "Pw": password}, dict({"Authorization": CLIENT}, **headers))


def log_lines(log_dir):
    files = sorted(log_dir.glob("*.log"))
    assert len(files) == 1, files
    return files[0].name, files[0].read_text().splitlines()


def test_wrong_password_is_401_and_logged_in_debian_format(jellyfin):
    base, log_dir = jellyfin()
    assert login(base, "alice", "wrong")[0] == 401
    name, lines = log_lines(log_dir)
    assert re.fullmatch(r"jellyfin\d{8}\.log", name)
    assert re.fullmatch(STAMP + r' \[INF\] Authentication request for "alice" has been denied \(IP: "127\.0\.0\.1"\)\.', lines[-2])
    assert re.fullmatch(STAMP + r' \[ERR\] Error processing request: "Invalid username or password entered". '
                        r'URL "POST" "/Users/AuthenticateByName"\.', lines[-1])


def test_docker_format_carries_thread_and_source(jellyfin):
    base, log_dir = jellyfin("docker")
    assert login(base, "nobody", "x")[0] == 401
    name, lines = log_lines(log_dir)
    assert re.fullmatch(r"log_\d{8}\.log", name)
    assert re.fullmatch(STAMP + r' \[INF\] \[\d+\] Jellyfin\.Server\.Implementations\.Users\.UserManager: '
                        r'Authentication request for "nobody" has been denied \(IP: "127\.0\.0\.1"\)\.', lines[-2])


def test_success_gives_token_that_opens_the_api(jellyfin):
    base = jellyfin()[0]
    status, body = login(base, "alice", "s3cret")
    assert status == 200
    token = json.loads(body)["AccessToken"]
    assert call(base + "/Users/Me")[0] == 401
    assert call(base + "/Users/Me", headers={"X-Emby-Token": token}) == (200, json.dumps({"Name": "alice", "ServerId": standin.Server({}).server_id}))
    assert call(base + "/Items", headers={"Authorization": CLIENT + ', Token="%s"' % token})[0] == 200
    assert call(base + "/Items", headers={"X-Emby-Token": "forged"})[0] == 401


def test_empty_username_and_missing_client_fields(jellyfin):
    base, log_dir = jellyfin()
    assert login(base, "", "x")[0] == 400
    assert call(base + "/Users/AuthenticateByName", {"Username": "alice", "Pw": "x"}, {"Authorization": 'MediaBrowser Client="t"'})[0] == 400
    lines = log_lines(log_dir)[1]
    assert any(line.endswith('Authentication request without username has been denied (IP: "127.0.0.1").') for line in lines)


def test_lockout_disables_the_account_even_for_the_right_password(jellyfin):
    base, log_dir = jellyfin(lockout=2)
    assert [login(base, "alice", "bad")[0] for _attempt in range(2)] == [401, 401]
    assert login(base, "alice", "s3cret")[0] == 403
    lines = log_lines(log_dir)[1]
    assert any(line.endswith('[WRN] Disabling user "alice" due to 2 unsuccessful login attempts.') for line in lines)
    assert any('has been denied because this account is currently disabled (IP: "127.0.0.1").' in line for line in lines)


def test_forwarded_for_ignored_unless_peer_is_a_known_proxy(jellyfin):
    base, log_dir = jellyfin()
    login(base, "alice", "bad", **{"X-Forwarded-For": "203.0.113.9"})
    assert '(IP: "127.0.0.1")' in log_lines(log_dir)[1][-2]


def test_forwarded_for_used_from_a_known_proxy(jellyfin):
    base, log_dir = jellyfin(known_proxies=["127.0.0.1"])
    login(base, "alice", "bad", **{"X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
    assert '(IP: "203.0.113.9")' in log_lines(log_dir)[1][-2]


def test_username_rendering_escapes_quotes_but_not_newlines():
    log = standin.JellyfinLog("debian", "/nonexistent")
    name = standin.Quoted('x" (IP: "192.0.2.1").\n[2026-01-01 00:00:00.000 +00:00] [INF] y')
    line = log.format_line(standin.datetime.datetime(2026, 6, 10, 20, 15, 3, 123000, standin.datetime.timezone.utc), "INF",
                           standin.USER_MANAGER, "Authentication request for {UserName} has been denied (IP: {IP}).",
                           {"UserName": name, "IP": standin.Quoted("203.0.113.5")}, 7)
    assert line == ('[2026-06-10 20:15:03.123 +00:00] [INF] Authentication request for "x\\" (IP: \\"192.0.2.1\\").\n'
                    '[2026-01-01 00:00:00.000 +00:00] [INF] y" has been denied (IP: "203.0.113.5").\n')


def test_console_format_is_unquoted():
    log = standin.JellyfinLog("console", "/nonexistent")
    line = log.format_line(standin.datetime.datetime(2026, 6, 10, 20, 15, 3), "INF", standin.USER_MANAGER,
                           "Authentication request for {UserName} has been denied (IP: {IP}).",
                           {"UserName": standin.Quoted("admin"), "IP": standin.Quoted("2001:db8::5")}, 57)
    assert line == ("[20:15:03] [INF] [57] Jellyfin.Server.Implementations.Users.UserManager: "
                    "Authentication request for admin has been denied (IP: 2001:db8::5).\n")


@pytest.mark.parametrize("peer,expected", [("::ffff:192.0.2.7", "192.0.2.7"), ("2001:db8::5", "2001:db8::5")])
def test_address_normalization(peer, expected):
    assert str(standin.client_address(peer, None, [])) == expected


@pytest.mark.parametrize("path, expected", [
    ("/emby/web/index.html", "/web/index.html"), ("/MediaBrowser/System/Restart", "/System/Restart"),
    ("/emby", "/"), ("/embyx/web", "/embyx/web"), ("/web/emby/x", "/web/emby/x")])
def test_path_trim_drops_one_leading_prefix_in_any_case(path, expected):
    assert standin.trim_path(path) == expected


@pytest.mark.parametrize("path", ["/web/", "/WEB/index.html", "/emby/Web/", "/%77eb/index.html", "/web/main.bundle.js"])
def test_every_spelling_of_the_web_ui_serves_it(jellyfin, path):
    base, _log = jellyfin()
    status, body = call(base + path)
    assert status == 200 and 'id="reactRoot"' in body


def test_restart_needs_a_token_and_is_accepted_with_one(jellyfin):
    base, _log = jellyfin()
    token = json.loads(login(base, "alice", "s3cret")[1])["AccessToken"]
    assert call(base + "/emby/System/Restart", {}, {})[0] == 401
    assert call(base + "/System/Restart", {}, {"X-Emby-Token": token})[0] == 204


def test_socket_upgrades_with_a_token_only(jellyfin):
    base, _log = jellyfin()
    token = json.loads(login(base, "alice", "s3cret")[1])["AccessToken"]
    port = int(base.rsplit(":", 1)[1])
    answers = []
    for query in ("", "?api_key=" + token):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(("GET /socket%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" % query).encode())
            answers.append(sock.recv(4096).decode("latin-1"))
    assert answers[0].startswith("HTTP/1.1 401")
    # The accept value of RFC 6455's own example key.
    assert answers[1].startswith("HTTP/1.1 101") and "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answers[1]


def test_bind_addresses_come_from_network_xml(tmp_path):
    xml = tmp_path / "network.xml"
    xml.write_text("<NetworkConfiguration><LocalNetworkAddresses><string>127.0.0.1</string></LocalNetworkAddresses>"
                   "</NetworkConfiguration>")
    assert standin.Server({"network_xml": str(xml), "log_dir": str(tmp_path)}).bind_addresses == ["127.0.0.1"]
    assert standin.Server({"network_xml": str(tmp_path / "absent.xml"), "log_dir": str(tmp_path)}).bind_addresses == []


@pytest.mark.parametrize("subnets, ipv6, address, local", [
    ([], False, "10.44.0.2", True),
    ([], False, "100.64.0.2", False),
    ([], False, "fd00::2", False),
    ([], True, "fd00::2", True),
    (["192.168.77.0/24"], False, "10.44.0.2", False),
    (["192.168.77.0/24"], False, "127.0.0.1", True),
    (["10.0.0.0/8", "!10.44.0.0/24"], False, "10.44.0.2", False),
    (["10.0.0.0/8", "!10.44.0.0/24"], False, "10.45.0.2", True),
])
def test_local_network_as_jellyfin_decides_it(subnets, ipv6, address, local):
    assert (standin.ipaddress.ip_address(address) in standin.LocalNetwork(subnets, ipv6)) is local


def test_remote_access_off_gives_remote_clients_an_empty_503_but_the_web_files(tmp_path):
    xml = tmp_path / "network.xml"
    xml.write_text("<NetworkConfiguration><EnableRemoteAccess>false</EnableRemoteAccess>"
                   "<KnownProxies><string>127.0.0.1</string></KnownProxies>"
                   "<LocalNetworkSubnets><string>10.44.0.0/24</string></LocalNetworkSubnets></NetworkConfiguration>")
    app = standin.Server({"network_xml": str(xml), "log_dir": str(tmp_path / "log"),
                          "users": [{"name": "alice", "password": "s3cret"}]})
    server = standin.make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        remote, vpn = {"X-Forwarded-For": "203.0.113.9"}, {"X-Forwarded-For": "10.44.0.5"}
        assert call(base + "/System/Info/Public", headers=remote) == (503, "")
        assert login(base, "alice", "s3cret", **remote) == (503, "")
        assert call(base + "/web/index.html", headers=remote)[0] == 200
        assert call(base + "/System/Info/Public", headers=vpn)[0] == 200
        assert login(base, "alice", "s3cret", **vpn)[0] == 200
        _name, lines = log_lines(tmp_path / "log")
        blocked = [line for line in lines if "Blocking request" in line]
        assert len(blocked) == 2 and blocked[0].endswith(
            '[WRN] Blocking request to "%2FSystem%2FInfo%2FPublic" by "203.0.113.9" due to IP filtering rule, '
            'reason: RejectDueToRemoteAccessDisabled')
    finally:
        server.shutdown()
        server.server_close()


def test_sessions_show_who_is_playing_to_an_api_key(jellyfin):
    base = jellyfin(api_keys=["k" * 32])[0]
    token = json.loads(login(base, "alice", "s3cret")[1])["AccessToken"]
    as_key = {"Authorization": 'MediaBrowser Token="%s"' % ("k" * 32)}
    assert call(base + "/Sessions")[0] == 401
    assert call(base + "/Sessions", headers={"X-Emby-Token": "forged"})[0] == 401
    status, body = call(base + "/Sessions?activeWithinSeconds=960", headers=as_key)
    assert status == 200 and [s["UserName"] for s in json.loads(body)] == ["alice"] and "NowPlayingItem" not in body
    assert call(base + "/Sessions/Playing", {"ItemId": "m1"}, {"X-Emby-Token": token})[0] == 204
    playing = json.loads(call(base + "/Sessions", headers=as_key)[1])
    assert playing[0]["NowPlayingItem"]["Id"] == "m1"
    assert call(base + "/Sessions/Playing/Stopped", {"ItemId": "m1"}, {"X-Emby-Token": token})[0] == 204
    assert "NowPlayingItem" not in json.loads(call(base + "/Sessions", headers=as_key)[1])[0]
