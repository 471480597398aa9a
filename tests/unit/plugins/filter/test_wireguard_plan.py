import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.jellyfin_hardening.plugins.filter.wireguard_plan import wireguard_plan

KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
OTHER = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="


def test_peers_are_normalized_in_order():
    plan = wireguard_plan([{"name": "alice", "address": "10.44.0.2", "generate": True},
                           {"name": "bob", "address": " 10.44.0.3 ", "public_key": KEY, "persistent_keepalive": 0}],
                          "10.44.0.1/24")
    assert plan["network"] == "10.44.0.0/24" and plan["server"] == "10.44.0.1"
    assert plan["peers"] == [
        {"name": "alice", "address": "10.44.0.2", "allowed_ips": "10.44.0.2/32", "public_key": None, "generate": True,
         "persistent_keepalive": None},
        {"name": "bob", "address": "10.44.0.3", "allowed_ips": "10.44.0.3/32", "public_key": KEY, "generate": False,
         "persistent_keepalive": 0}]
    assert wireguard_plan([], "10.44.0.9/16") == {"network": "10.44.0.0/16", "server": "10.44.0.9", "peers": []}


@pytest.mark.parametrize("peers, message", [
    ([{"name": "Alice", "address": "10.44.0.2", "generate": True}], "name 'Alice'"),
    ([{"name": "a", "address": "10.44.0.2", "generate": True}, {"name": "a", "address": "10.44.0.3", "generate": True}],
     "name 'a'"),
    ([{"name": "a", "address": "10.45.0.2", "generate": True}], "10.45.0.2 is not a host of the VPN network 10.44.0.0/24"),
    ([{"name": "a", "address": "10.44.0.255", "generate": True}], "10.44.0.255 is not a host"),
    ([{"name": "a", "address": "10.44.0.1", "generate": True}], "10.44.0.1 is already the server's"),
    ([{"name": "a", "address": "10.44.0.2", "generate": True}, {"name": "b", "address": "10.44.0.2", "generate": True}],
     "peer b: address 10.44.0.2 is already"),
    ([{"name": "a", "address": "nope", "generate": True}], "address 'nope' is not an IPv4 address"),
    ([{"name": "a", "address": "10.44.0.2"}], "either public_key"),
    ([{"name": "a", "address": "10.44.0.2", "generate": True, "public_key": KEY}], "either public_key"),
    ([{"name": "a", "address": "10.44.0.2", "generate": "yes"}], "either public_key"),
    ([{"name": "a", "address": "10.44.0.2", "public_key": KEY[:-2]}], "public_key %r is not a WireGuard key" % KEY[:-2]),
    ([{"name": "a", "address": "10.44.0.2", "public_key": KEY}, {"name": "b", "address": "10.44.0.3", "public_key": KEY}],
     "peer b: public_key is another peer's"),
    ([{"name": "a", "address": "10.44.0.2", "public_key": OTHER, "persistent_keepalive": 70000}], "persistent_keepalive 70000"),
    ([{"name": "a", "address": "10.44.0.2", "public_key": OTHER, "endpoint": "x"}], "a mapping with"),
    ("alice", "must be a list"),
])
def test_bad_peers_are_named(peers, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        wireguard_plan(peers, "10.44.0.1/24")


@pytest.mark.parametrize("server", ["10.44.0.0/24", "10.44.0.1/31", "10.44.0.1", "fd44::1/64", "10.44.0.1/33"])
def test_bad_server_address_is_named(server):
    with pytest.raises(AnsibleFilterError, match="wireguard_address '%s'" % server.replace(".", r"\.")):
        wireguard_plan([], server)
