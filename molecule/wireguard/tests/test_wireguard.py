"""WireGuard with vpn_only: real wireguard-go tunnels between lab containers, the client configs the role wrote,
real nftables on the server, and the Jellyfin stand-in with remote access off."""

import base64
import json
import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from labhosts import addr, connect, tcp_open  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
CLIENT_DIR = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "wireguard-clients", "wg-server")
SERVER = connect("wg-server")
ALICE = connect("wg-alice")
BOB = connect("wg-bob")
CAROL = connect("wg-carol")
VPN_JELLYFIN = "http://10.44.0.1:8096"
CAROL_PEER = [{"name": "carol", "address": "10.44.0.4", "generate": True}]
PEER_DIR = "/etc/wireguard/jellyfin-hardening-wg0"


def converge(*args, extra_vars=None, callback=None):
    command = ["ansible-playbook", "-i", INVENTORY, os.path.join(SCENARIO, "converge.yml"), *args]
    if extra_vars is not None:
        command += ["-e", json.dumps(extra_vars)]
    env = dict(os.environ, **({"ANSIBLE_STDOUT_CALLBACK": callback} if callback else {}))
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, env=env)


def client_config(name):
    with open(os.path.join(CLIENT_DIR, name + ".conf"), encoding="utf-8") as handle:
        return handle.read()


def tunnel_up(host, config):
    """Install a client config as wg0 and (re)start wg-quick@wg0 on wireguard-go."""
    encoded = base64.b64encode(config.encode()).decode()
    host.check_output("umask 077 && echo %s | base64 -d > /etc/wireguard/wg0.conf" % encoded)
    host.run_expect([0], "systemctl restart wg-quick@wg0")


def jellyfin_status(host, base=VPN_JELLYFIN, path="/System/Info/Public"):
    out = host.check_output("jfclient get %s --path %s --timeout 3" % (base, path))
    return json.loads(out.splitlines()[-1])["status"]


def restart_standin(command):
    """Run `command` (ending in a restart of jellyfin) and wait until the stand-in answers on loopback again: its unit
    is Type=simple, like Jellyfin's own, so systemctl returns before the port listens."""
    SERVER.check_output(command)
    for _attempt in range(60):
        if jellyfin_status(SERVER, "http://127.0.0.1:8096", "/health") == 200:
            return
        SERVER.run("sleep 0.5")
    pytest.fail("the stand-in did not answer /health within 60 attempts after the restart")


def peer_stats(name_key):
    """The server's view of one peer: (rx bytes, tx bytes, latest handshake)."""
    transfer = dict(line.split("\t", 1) for line in SERVER.check_output("wg show wg0 transfer").splitlines())
    handshakes = dict(line.split("\t") for line in SERVER.check_output("wg show wg0 latest-handshakes").splitlines())
    rx, tx = (int(v) for v in transfer[name_key].split("\t"))
    return rx, tx, int(handshakes[name_key])


def public_key_of(config):
    private = re.search(r"^PrivateKey = (\S+)$", config, re.M).group(1)
    return SERVER.check_output("echo %s | wg pubkey" % private)


@pytest.fixture(scope="module", autouse=True)
def tunnels():
    """alice with her generated config, bob with the role's config and his own private key; carol has none."""
    tunnel_up(ALICE, client_config("alice"))
    own = BOB.check_output("cat /etc/wireguard/own.key")
    tunnel_up(BOB, client_config("bob").replace("PrivateKey = <private key of bob>", "PrivateKey = " + own))
    yield


def test_server_keys_stay_on_the_host_and_out_of_the_config():
    key = SERVER.file("/etc/wireguard/wg0.key")
    assert key.mode == 0o600 and key.user == "root"
    assert SERVER.file("/etc/wireguard/wg0.conf").mode == 0o600
    assert "PrivateKey" not in SERVER.file("/etc/wireguard/wg0.conf").content_string
    # The interface runs with the key from its file (wg-quick's PostUp loaded it).
    assert SERVER.check_output("wg show wg0 public-key") == SERVER.check_output("wg pubkey < /etc/wireguard/wg0.key")
    assert SERVER.check_output("wg show wg0 listen-port") == "51820"
    # No kernel module in the lab: the role fell back to wireguard-go.
    assert SERVER.run("pgrep -x wireguard-go").rc == 0
    assert SERVER.file(PEER_DIR).mode == 0o700


def test_client_configs_on_the_controller_are_private_and_complete():
    assert os.stat(CLIENT_DIR).st_mode & 0o777 == 0o700
    for name in ("alice.conf", "alice.png", "bob.conf"):
        assert os.stat(os.path.join(CLIENT_DIR, name)).st_mode & 0o777 == 0o600, name
    with open(os.path.join(CLIENT_DIR, "alice.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not os.path.exists(os.path.join(CLIENT_DIR, "bob.png")), "bob's config has no private key: no QR code"
    alice, bob = client_config("alice"), client_config("bob")
    server_key = SERVER.check_output("wg show wg0 public-key")
    endpoint = "Endpoint = %s:51820" % addr(SERVER)
    for config in (alice, bob):
        assert "PublicKey = %s" % server_key in config and endpoint in config
        assert "AllowedIPs = 10.44.0.0/24" in config and "PersistentKeepalive = 25" in config
    assert "Address = 10.44.0.2/32" in alice and "PresharedKey = " in alice
    assert "PrivateKey = <private key of bob>" in bob and "PresharedKey" not in bob
    # The server knows alice by the key pair it generated for her, and bob by his own.
    peers = SERVER.check_output("wg show wg0 peers").split()
    assert public_key_of(alice) in peers and BOB.check_output("cat /etc/wireguard/own.pub") in peers


def test_peers_reach_jellyfin_through_the_tunnel_only():
    for client in (ALICE, BOB):
        assert jellyfin_status(client) == 200, client
        login = json.loads(client.check_output(
            "jfclient login %s --user alice --password alice-lab-password --timeout 3" % VPN_JELLYFIN).splitlines()[-1])
        assert login["status"] == 200, login
        # Outside the tunnel, the server's own address does not answer them on the Jellyfin port.
        assert not tcp_open(client, SERVER, 8096, 1), client
    # Jellyfin logged the VPN addresses: the tunnel, not a NAT, carried them.
    assert re.search(r'Authentication request for "alice" has succeeded', SERVER.check_output("cat /var/log/jellyfin/jellyfin*.log"))


def test_jellyfin_treats_vpn_clients_as_local_because_the_role_said_so():
    xml = SERVER.file("/etc/jellyfin/network.xml").content_string
    subnets = re.findall(r"<string>([^<]+)</string>", xml.split("<LocalNetworkSubnets>")[1].split("</LocalNetworkSubnets>")[0])
    assert subnets == ["192.168.77.0/24", "10.44.0.0/24", "192.0.2.0/24"], "the admin's LAN must stay local"
    assert "<EnableRemoteAccess>false</EnableRemoteAccess>" in xml
    # Without the VPN in LocalNetworkSubnets, Jellyfin refuses the same client (503): the 200 above is the role's doing.
    encoded = base64.b64encode(xml.replace("<string>10.44.0.0/24</string>", "").encode()).decode()
    restart_standin("cp -p /etc/jellyfin/network.xml /root/network.xml.lab && echo %s | base64 -d > /etc/jellyfin/network.xml"
                    " && systemctl restart jellyfin" % encoded)
    try:
        assert jellyfin_status(ALICE) == 503
        assert "due to IP filtering rule, reason: RejectDueToRemoteAccessDisabled" in SERVER.check_output(
            "cat /var/log/jellyfin/jellyfin*.log")
    finally:
        restart_standin("cp -p /root/network.xml.lab /etc/jellyfin/network.xml && systemctl restart jellyfin")
    assert jellyfin_status(ALICE) == 200


def test_a_stranger_gets_no_answer_from_jellyfin_or_the_vpn_port():
    assert not tcp_open(CAROL, SERVER, 8096, 2)
    # A UDP probe that sees an answer: a closed port refuses (ICMP), so silence on 51820 means WireGuard said nothing.
    probe = ("import os,socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(2); "
             "s.connect(('%s', %s)); s.send(b'\\x01\\x00\\x00\\x00'+os.urandom(144)); "
             "\ntry:\n  s.recv(512); print('answer')\nexcept socket.timeout:\n  print('silence')"
             "\nexcept ConnectionRefusedError:\n  print('refused')")
    run = "python3 -c \"%s\""
    assert CAROL.check_output(run % (probe % (addr(SERVER), 51999))) == "refused"
    assert CAROL.check_output(run % (probe % (addr(SERVER), 51820))) == "silence"


def test_a_reload_whose_strip_printed_nothing_changes_nothing():
    # wireguard-go lists its peers in no fixed order: compare them as a set.
    before = sorted(SERVER.check_output("wg show wg0 peers").split())
    SERVER.check_output("mkdir -p /root/fakebin && printf '#!/bin/sh\\nexit 0\\n' > /root/fakebin/wg-quick && chmod +x /root/fakebin/wg-quick")
    run = SERVER.run("PATH=/root/fakebin:$PATH jellyfin-hardening-wg-reload wg0")
    assert run.rc != 0 and "no [Interface] section" in run.stderr and "left as it was" in run.stderr
    assert sorted(SERVER.check_output("wg show wg0 peers").split()) == before and len(before) == 2
    assert jellyfin_status(ALICE) == 200


def test_adding_a_peer_keeps_the_others_sessions_and_removing_it_cuts_it_off():
    alice_key = public_key_of(client_config("alice"))
    key_hash = SERVER.check_output("sha256sum /etc/wireguard/wg0.key")
    ifindex = SERVER.check_output("cat /sys/class/net/wg0/ifindex")
    rx_before = peer_stats(alice_key)[0]
    ALICE.run_expect([0], "systemd-run --unit=lab-ping ping -i 0.2 -W 1 10.44.0.1")
    try:
        add = converge("-v", extra_vars={"lab_extra_peers": CAROL_PEER})
    finally:
        ALICE.run("systemctl kill -s INT lab-ping")
    assert add.returncode == 0, add.stdout[-3000:] + add.stderr[-3000:]
    carol = client_config("carol")
    # Nothing secret in a -v run: not the server's key, nor a generated private or preshared key.
    secrets = [SERVER.check_output("cat /etc/wireguard/wg0.key")]
    for config in (client_config("alice"), carol):
        secrets += re.findall(r"^(?:PrivateKey|PresharedKey) = (\S+)$", config, re.M)
    assert len(secrets) == 5 and not [s for s in secrets if s in add.stdout + add.stderr]
    # The same interface, alice's counters never reset, the same server key, and no ping lost.
    assert SERVER.check_output("cat /sys/class/net/wg0/ifindex") == ifindex
    assert peer_stats(alice_key)[0] > rx_before
    assert SERVER.check_output("sha256sum /etc/wireguard/wg0.key") == key_hash
    summary = ALICE.check_output("journalctl -u lab-ping --no-pager -o cat | grep 'packets transmitted'")
    sent, received = (int(n) for n in re.search(r"(\d+) packets transmitted, (\d+) received", summary).groups())
    # At most the ping in flight when it was stopped may miss its reply; a restart of the interface would have lost
    # about 15 s of them (alice only handshakes again after REKEY_TIMEOUT without answers).
    assert sent > 20 and sent - received <= 1, summary
    tunnel_up(CAROL, carol)
    assert jellyfin_status(CAROL) == 200

    remove = converge()
    assert remove.returncode == 0, remove.stdout[-3000:] + remove.stderr[-3000:]
    assert public_key_of(carol) not in SERVER.check_output("wg show wg0 peers")
    assert SERVER.run("ls %s/carol.*" % PEER_DIR).rc != 0, "carol's keys stayed on the server"
    assert jellyfin_status(CAROL) is None
    assert jellyfin_status(ALICE) == 200 and jellyfin_status(BOB) == 200
    CAROL.run("systemctl stop wg-quick@wg0")


@pytest.mark.parametrize("extra_vars, named", [
    ({"lab_extra_peers": [{"name": "eve", "address": "10.45.0.9", "generate": True}]}, "10.45.0.9 is not a host of the VPN network"),
    ({"lab_extra_peers": [{"name": "eve", "address": "10.44.0.9", "public_key": "not-a-key"}]}, "public_key 'not-a-key'"),
    ({"wireguard_lan_subnets": ["192.0.2.0/33"]}, "192.0.2.0/33"),
])
def test_bad_settings_fail_before_anything_is_touched(extra_vars, named):
    files = "sha256sum /etc/wireguard/wg0.conf /etc/jellyfin-hardening/firewall/layers.d/*.json"
    before = SERVER.check_output(files)
    run = converge(extra_vars=extra_vars, callback="ansible.builtin.json")
    assert run.returncode != 0 and named in run.stdout, run.stdout[-3000:]
    assert SERVER.check_output(files) == before


def test_absent_removes_the_vpn_and_its_layer_and_present_brings_it_back():
    gone = converge(extra_vars={"wireguard_state": "absent"})
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-3000:]
    try:
        assert SERVER.run("ip link show wg0").rc != 0
        assert SERVER.run("systemctl is-enabled wg-quick@wg0").stdout.strip() != "enabled"
        for path in ("/etc/wireguard/wg0.conf", "/etc/wireguard/wg0.key", PEER_DIR,
                     "/etc/jellyfin-hardening/firewall/layers.d/45-wireguard-wg0.json"):
            assert not SERVER.file(path).exists, path
        assert "vpn_wg0" not in SERVER.check_output("nft list table inet jellyfin_hardening")
        # Without the vpn_only layer, Jellyfin's port is open again to anyone the other layers let through.
        assert tcp_open(CAROL, SERVER, 8096, 2)
    finally:
        back = converge()
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-3000:]
    assert not tcp_open(CAROL, SERVER, 8096, 1)
    # A new server key: the old client configs no longer fit, so the role wrote new ones.
    tunnel_up(ALICE, client_config("alice"))
    assert jellyfin_status(ALICE) == 200
