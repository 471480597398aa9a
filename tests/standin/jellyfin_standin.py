"""A stand-in for the Jellyfin server, faithful where the hardening layers touch it.

Real Jellyfin cannot be installed in the lab, so the tests run this instead. What it copies
(see the project's notes on Jellyfin, read from Jellyfin's own source):

* the login API: ``POST /Users/AuthenticateByName`` with the ``MediaBrowser`` authorization
  header, 200/400/401/403 as Jellyfin answers, lockout after a user's configured failures;
* the log lines around a login, byte for byte, in the three sink formats (Debian package
  file, default/Docker file, console), with strings rendered as Jellyfin's logger does;
* the client address: X-Forwarded-For is honoured only from a peer listed in ``KnownProxies``
  of network.xml, read at start-up (a change needs a restart, as in Jellyfin 10.10.7+);
* a few unauthenticated endpoints and token-protected API paths, with Jellyfin's routing quirks
  that a reverse proxy's path rules must cover: paths are case-insensitive, a leading ``/emby`` or
  ``/mediabrowser`` is stripped (PathTrimMiddleware), the web client is every file under ``/web``;
* ``/socket`` (a websocket that authenticates with ``api_key``), ``POST /System/Restart|Shutdown``;
* the bind addresses: ``LocalNetworkAddresses`` of network.xml, when set, are the only ones listened on;
* the local network and remote access (NetworkManager, IpBasedAccessValidationMiddleware, 10.11): with
  ``EnableRemoteAccess`` false, a client outside ``LocalNetworkSubnets`` (empty: the private IPv4 ranges,
  plus IPv6 ULA and link-local when ``EnableIPv6``; loopback is always local; ``!`` entries exclude)
  gets an empty 503 for everything but the web client's static files, and a warning is logged.

Only the Python standard library is used, so it runs on a minimal Debian host.
"""

import argparse
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import re
import secrets
import socket
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

USER_MANAGER = "Jellyfin.Server.Implementations.Users.UserManager"
EXCEPTION_MIDDLEWARE = "Jellyfin.Api.Middleware.ExceptionMiddleware"
AUTH_HANDLER = "Jellyfin.Api.Auth.CustomAuthenticationHandler"
PROGRAM = "Jellyfin.Server.Program"
IP_MIDDLEWARE = "Jellyfin.Api.Middleware.IpBasedAccessValidationMiddleware"
# NetworkManager.InitializeLan's fallback when LocalNetworkSubnets is empty (IPv6 only with EnableIPv6).
DEFAULT_LAN_V4 = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
DEFAULT_LAN_V6 = ("::1/128", "fe80::/10", "fc00::/7")
AUTH_URL = "/Users/AuthenticateByName"
LOG_FORMATS = ("debian", "docker", "console")
REQUIRED_CLIENT_FIELDS = ("Client", "Device", "DeviceId", "Version")
API_KEY_USER = "(API key)"
WEB_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Jellyfin</title></head>
<body><div id="reactRoot"><h1>Jellyfin</h1>
<form id="loginPage" method="post" action="#"><input name="username"><input name="password" type="password"></form>
</div></body></html>
"""


class Quoted(str):
    """A string property: Serilog quotes it in file sinks and writes it raw on the console."""


def render(template, values, quote):
    """Fill a message template the way Serilog renders it for the given sink."""
    def one(match):
        value = values[match.group(1)]
        if isinstance(value, Quoted) and quote:
            # Only the quote is escaped: newlines, backslashes and control characters stay raw.
            return '"' + value.replace('"', '\\"') + '"'
        return str(value)
    return re.sub(r"\{(\w+)\}", one, template)


class JellyfinLog:
    """Writes lines in one of Jellyfin's three sink formats."""

    def __init__(self, fmt, log_dir, stream=None):
        if fmt not in LOG_FORMATS:
            raise ValueError("log format must be one of %s, got %r" % (", ".join(LOG_FORMATS), fmt))
        self.fmt = fmt
        self.log_dir = log_dir
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def path_for(self, now):
        prefix = "jellyfin" if self.fmt == "debian" else "log_"
        return os.path.join(self.log_dir, "%s%s.log" % (prefix, now.strftime("%Y%m%d")))

    def format_line(self, now, level, source, template, values, thread_id):
        if self.fmt == "console":
            return "[%s] [%s] [%d] %s: %s\n" % (now.strftime("%H:%M:%S"), level, thread_id, source,
                                                render(template, values, quote=False))
        offset = now.strftime("%z")
        stamp = "%s.%03d %s:%s" % (now.strftime("%Y-%m-%d %H:%M:%S"), now.microsecond // 1000, offset[:3], offset[3:])
        message = render(template, values, quote=True)
        if self.fmt == "debian":
            return "[%s] [%s] %s\n" % (stamp, level, message)
        return "[%s] [%s] [%d] %s: %s\n" % (stamp, level, thread_id, source, message)

    def write(self, level, source, template, exception=None, **values):
        now = datetime.datetime.now().astimezone()
        line = self.format_line(now, level, source, template, values, threading.get_native_id() % 200 + 1)
        if exception:
            line += exception.rstrip("\n") + "\n"
        with self.lock:
            if self.fmt == "console":
                self.stream.write(line)
                self.stream.flush()
            else:
                os.makedirs(self.log_dir, exist_ok=True)
                with open(self.path_for(now), "a", encoding="utf-8") as handle:
                    handle.write(line)


def network_xml_array(path, array):
    """The strings of one array of a Jellyfin network.xml (empty when the file or array is absent)."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        return []
    return [(e.text or "").strip() for e in root.findall("./%s/string" % array) if (e.text or "").strip()]


def network_xml_flag(path, element, default):
    """A boolean element of network.xml (``true``/``false``), or the default when the file or element is absent."""
    try:
        found = ET.parse(path).getroot().find("./" + element)
    except FileNotFoundError:
        return default
    return default if found is None or not (found.text or "").strip() else found.text.strip().lower() == "true"


class LocalNetwork:
    """Which client addresses Jellyfin deems local (NetworkManager.IsInLocalNetwork)."""

    def __init__(self, subnets, enable_ipv6=False):
        parsed = [(text.startswith("!"), ipaddress.ip_network(text.lstrip("!"), strict=False)) for text in subnets]
        self.include = [net for excluded, net in parsed if not excluded]
        self.exclude = [net for excluded, net in parsed if excluded]
        if not self.include:
            defaults = DEFAULT_LAN_V4 + (DEFAULT_LAN_V6 if enable_ipv6 else ())
            self.include = [ipaddress.ip_network(text) for text in defaults]

    def __contains__(self, ip):
        if ip.is_loopback:
            return True
        return any(ip in net for net in self.include) and not any(ip in net for net in self.exclude)


def parse_network_xml(path):
    """Return the KnownProxies of a Jellyfin network.xml as networks (empty when absent)."""
    return [ipaddress.ip_network(text, strict=False) for text in network_xml_array(path, "KnownProxies")]


def trim_path(path):
    """Jellyfin's PathTrimMiddleware: a leading /emby or /mediabrowser is dropped, in any case."""
    match = re.match(r"(?i)/(emby|mediabrowser)(?=/|$)", path)
    return path[match.end():] or "/" if match else path


def normalize(address):
    """Jellyfin logs IPv4-mapped IPv6 as plain IPv4 and never a port."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def client_address(peer, forwarded_for, known_proxies):
    """ASP.NET forwarded-headers logic as Jellyfin configures it (no forward limit).

    The header is read right to left only while the current hop is a known proxy.
    """
    current = normalize(peer)
    if not known_proxies or not forwarded_for:
        return current
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    while hops and any(current in net for net in known_proxies):
        candidate = hops.pop()
        try:
            current = normalize(candidate)
        except ValueError:
            break
    return current


def parse_authorization(value):
    """Parse ``MediaBrowser Key="value", ...``; None when it is not that scheme."""
    if not value:
        return None
    scheme, _sep, rest = value.strip().partition(" ")
    if scheme.lower() not in ("mediabrowser", "emby"):
        return None
    return dict(re.findall(r'(\w+)="([^"]*)"', rest))


class Users:
    """Users, their failure counts and tokens; the disabled flag survives a restart."""

    def __init__(self, users, state_file):
        self.users = {u["name"].lower(): dict(u, failures=0, disabled=bool(u.get("disabled"))) for u in users}
        self.state_file = state_file
        self.tokens = {}
        self.lock = threading.Lock()
        if state_file and os.path.exists(state_file):
            with open(state_file, encoding="utf-8") as handle:
                for name in json.load(handle).get("disabled", []):
                    if name in self.users:
                        self.users[name]["disabled"] = True

    def save(self):
        if self.state_file:
            disabled = sorted(name for name, user in self.users.items() if user["disabled"])
            with open(self.state_file, "w", encoding="utf-8") as handle:
                json.dump({"disabled": disabled}, handle)


class Server:
    def __init__(self, config):
        self.config = config
        self.log = JellyfinLog(config.get("log_format", "debian"), config.get("log_dir", "/var/log/jellyfin"))
        network_xml = config.get("network_xml", "/etc/jellyfin/network.xml")
        self.known_proxies = parse_network_xml(network_xml)
        self.bind_addresses = network_xml_array(network_xml, "LocalNetworkAddresses")
        self.local_network = LocalNetwork(network_xml_array(network_xml, "LocalNetworkSubnets"),
                                          network_xml_flag(network_xml, "EnableIPv6", False))
        self.remote_access = network_xml_flag(network_xml, "EnableRemoteAccess", True)
        self.users = Users(config.get("users", []), config.get("state_file"))
        self.version = config.get("version", "10.11.11")
        # API keys (Dashboard > API Keys) act as an administrator; sessions are the logged-in tokens.
        self.api_keys = set(config.get("api_keys", []))
        self.sessions = {}
        self.server_id = config.get("server_id", "4f9a0c1e6b2d4c8f9e1a2b3c4d5e6f70")

    def authenticate(self, body, auth, ip):
        """Return (status, payload) for a login, writing Jellyfin's log lines on the way."""
        if auth is None or any(not auth.get(field) for field in REQUIRED_CLIENT_FIELDS):
            return 400, b"Invalid authorization header"
        username = body.get("Username")
        if not isinstance(username, str) or not username.strip():
            self.log.write("INF", USER_MANAGER, "Authentication request without username has been denied (IP: {IP}).", IP=Quoted(ip))
            self.log.write("ERR", EXCEPTION_MIDDLEWARE, "Error processing request. URL {Method} {Url}.",
                           exception="System.ArgumentNullException: Value cannot be null. (Parameter 'request.Username')\n"
                                     "   at Jellyfin.Api.Controllers.UserController.AuthenticateUserByName(AuthenticateUserByName request)",
                           Method=Quoted("POST"), Url=Quoted(AUTH_URL))
            return 400, b"Value cannot be null. (Parameter 'request.Username')"
        password = body.get("Pw") or ""
        with self.users.lock:
            user = self.users.users.get(username.lower())
            if user is not None and user["disabled"]:
                self.log.write("INF", USER_MANAGER,
                               "Authentication request for {UserName} has been denied because this account is currently disabled (IP: {IP}).",
                               UserName=Quoted(username), IP=Quoted(ip))
                message = "The %s account is currently disabled. Please consult with your administrator" % user["name"]
                self._middleware_error(message)
                return 403, (message + ".").encode()
            if user is not None and secrets.compare_digest(password, user.get("password", "")):
                user["failures"] = 0
                self.log.write("INF", USER_MANAGER, "Authentication request for {UserName} has succeeded.", UserName=Quoted(user["name"]))
                token = secrets.token_hex(16)
                self.users.tokens[token] = user["name"]
                self.sessions[token] = {"UserName": user["name"], "Client": auth["Client"], "DeviceId": auth["DeviceId"],
                                        "RemoteEndPoint": ip}
                return 200, json.dumps({
                    "User": {"Name": user["name"], "ServerId": self.server_id, "Id": user.get("id", secrets.token_hex(16))},
                    "SessionInfo": {"UserName": user["name"], "RemoteEndPoint": ip, "Client": auth["Client"], "DeviceId": auth["DeviceId"]},
                    "AccessToken": token,
                    "ServerId": self.server_id,
                }).encode()
            if user is not None:
                user["failures"] += 1
                limit = user.get("login_attempts_before_lockout", -1)
                limit = 3 if limit == 0 else limit
                if limit > 0 and user["failures"] >= limit:
                    user["disabled"] = True
                    self.users.save()
                    self.log.write("WRN", USER_MANAGER, "Disabling user {Username} due to {Attempts} unsuccessful login attempts.",
                                   Username=Quoted(user["name"]), Attempts=user["failures"])
                logged_name = user["name"]
            else:
                logged_name = username
        self.log.write("INF", USER_MANAGER, "Authentication request for {UserName} has been denied (IP: {IP}).",
                       UserName=Quoted(logged_name), IP=Quoted(ip))
        self._middleware_error("Invalid username or password entered")
        return 401, b"Error processing request."

    def blocks(self, ip, path):
        """IpBasedAccessValidationMiddleware with remote access off: True (and a warning) for a non-local client."""
        if self.remote_access or normalize(ip) in self.local_network:
            return False
        self.log.write("WRN", IP_MIDDLEWARE, "Blocking request to {Path} by {RemoteIP} due to IP filtering rule, reason: {Reason}",
                       Path=Quoted(quote(path, safe="")), RemoteIP=Quoted(ip), Reason="RejectDueToRemoteAccessDisabled")
        return True

    def _middleware_error(self, message):
        self.log.write("ERR", EXCEPTION_MIDDLEWARE, "Error processing request: {ExceptionMessage}. URL {Method} {Url}.",
                       ExceptionMessage=Quoted(message), Method=Quoted("POST"), Url=Quoted(AUTH_URL))

    @staticmethod
    def token_of(headers, query):
        auth = parse_authorization(headers.get("Authorization")) or {}
        token = auth.get("Token") or headers.get("X-Emby-Token") or headers.get("X-MediaBrowser-Token")
        return token or (query.get("api_key") or query.get("ApiKey") or [None])[0]

    def token_user(self, headers, query):
        return self.user_of(self.token_of(headers, query))

    def user_of(self, token):
        if token is None:
            return None
        if token in self.api_keys:
            return API_KEY_USER
        user = self.users.tokens.get(token)
        if user is None:
            self.log.write("INF", AUTH_HANDLER, "CustomAuthentication was not authenticated. Failure message: Invalid token.")
        return user

    def session_list(self, user):
        """GET /Sessions: an API key sees every session, a user their own; NowPlayingItem only while playing."""
        return [dict(session, Id=token[:8]) for token, session in sorted(self.sessions.items())
                if user == API_KEY_USER or session["UserName"] == user]

    def playing(self, token, body, stopped):
        """POST /Sessions/Playing (and /Stopped): the client reports playback, as every Jellyfin app does."""
        session = self.sessions.get(token)
        if session is None:
            return 400
        if stopped:
            session.pop("NowPlayingItem", None)
        else:
            item = str(body.get("ItemId") or "")
            session["NowPlayingItem"] = {"Id": item, "Name": "Item " + item, "Type": "Movie"}
        return 204

    def public_info(self):
        return {
            "LocalAddress": "http://%s:%d" % (socket.gethostname(), self.config.get("port", 8096)),
            "ServerName": self.config.get("server_name", socket.gethostname()),
            "Version": self.version,
            "ProductName": "Jellyfin Server",
            "OperatingSystem": "",
            "Id": self.server_id,
            "StartupWizardCompleted": True,
        }


class Handler(BaseHTTPRequestHandler):
    server_version = "Kestrel"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # Headers and body in one write, flushed at the end of each request, as Kestrel sends a small answer:
    # two writes on a keep-alive connection meet the client's delayed ACK and cost 40 ms each.
    wbufsize = 64 * 1024

    @property
    def app(self):
        return self.server.app

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Jellyfin writes no access log; neither does the stand-in."""

    def send(self, status, body=b"", content_type="text/plain; charset=utf-8", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, payload):
        self.send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def client_ip(self):
        return str(client_address(self.client_address[0], self.headers.get("X-Forwarded-For"), self.app.known_proxies))

    def do_GET(self):  # pylint: disable=invalid-name
        url = urlsplit(self.path)
        # Kestrel decodes the path before routing: /%77eb/ is /web/.
        path, query = trim_path(unquote(url.path)), parse_qs(url.query)
        lowered = path.lower().rstrip("/")
        if lowered == "":
            return self.send(302, headers={"Location": "web/"})
        if lowered == "/web" or lowered.startswith("/web/"):
            return self.send(200, WEB_PAGE, "text/html; charset=utf-8")
        # Static files come first in Jellyfin's pipeline; everything after them passes the IP filter.
        if self.app.blocks(self.client_ip(), path):
            return self.send(503)
        if lowered.startswith("/api-docs/"):
            return self.send(200, b"<!DOCTYPE html><title>Swagger UI</title>", "text/html; charset=utf-8")
        if lowered == "/health":
            return self.send(200, b"Healthy")
        if lowered == "/system/ping":
            return self.send(200, b'"Jellyfin Server"', "application/json; charset=utf-8")
        if lowered == "/system/info/public":
            return self.send_json(200, self.app.public_info())
        if lowered == "/users/public":
            return self.send_json(200, [])
        user = self.app.token_user(self.headers, query)
        if user is None:
            return self.send(401)
        if lowered == "/users/me":
            return self.send_json(200, {"Name": user, "ServerId": self.app.server_id})
        if lowered == "/items":
            return self.send_json(200, {"Items": [], "TotalRecordCount": 0, "StartIndex": 0})
        if lowered == "/sessions":
            return self.send_json(200, self.app.session_list(user))
        if lowered == "/system/info":
            return self.send_json(200, dict(self.app.public_info(), HasUpdateAvailable=False))
        if lowered == "/socket" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.accept_websocket()
        return self.send(404)

    def accept_websocket(self):
        """Complete the handshake (RFC 6455), send one ForceKeepAlive message as Jellyfin does, close."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        message = json.dumps({"MessageType": "ForceKeepAlive", "Data": 60}).encode()
        self.wfile.write(bytes([0x81, len(message)]) + message + bytes([0x88, 0]))
        self.close_connection = True

    do_HEAD = do_GET

    def do_POST(self):  # pylint: disable=invalid-name
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = trim_path(unquote(url.path))
        lowered = path.lower().rstrip("/")
        if self.app.blocks(self.client_ip(), path):
            return self.send(503)
        if lowered != AUTH_URL.lower():
            token = self.app.token_of(self.headers, parse_qs(url.query))
            if self.app.user_of(token) is None:
                return self.send(401)
            if lowered in ("/sessions/playing", "/sessions/playing/stopped"):
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self.send(400, b"Invalid JSON")
                return self.send(self.app.playing(token, body if isinstance(body, dict) else {}, lowered.endswith("stopped")))
            # Accepted, never carried out: the stand-in stays up for the next test.
            return self.send(204 if lowered in ("/system/restart", "/system/shutdown") else 404)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.send(400, b"Invalid JSON")
        if not isinstance(body, dict):
            return self.send(400, b"Invalid JSON")
        auth = parse_authorization(self.headers.get("Authorization") or self.headers.get("X-Emby-Authorization"))
        status, payload = self.app.authenticate(body, auth, self.client_ip())
        content_type = "application/json; charset=utf-8" if status == 200 else "text/plain; charset=utf-8"
        return self.send(status, payload, content_type)


class DualStackServer(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET6

    def server_bind(self):
        # One socket for IPv4 and IPv6, as Kestrel listens on both by default.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def make_server(app, host, port):
    if host in ("::", "") and socket.has_ipv6:
        try:
            server = DualStackServer(("::", port), Handler)
        except OSError:
            server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        server = server_class((host, port), Handler)
    server.app = app
    return server


def load_config(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="/etc/jellyfin/standin.json", help="JSON settings file")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    app = Server(config)
    port = int(config.get("port", 8096))
    servers = [make_server(app, host, port) for host in app.bind_addresses or [config.get("host", "::")]]
    app.log.write("INF", PROGRAM, "Jellyfin version: {Version}", Version=Quoted(app.version))
    app.log.write("INF", PROGRAM, "Startup complete {Elapsed}", Elapsed="0:00:01.2345678")
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
