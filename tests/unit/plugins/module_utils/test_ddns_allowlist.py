"""The DDNS allowlist: settings, the keep/hold decision (also property-tested), apply() against a fake set pair, and ufw."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import ipaddress
import json
import os
import stat
import tempfile

import pytest
from hypothesis import example, given, settings, strategies as st

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import ddns_allowlist, dns_query

NOW = 1700000000
KEEP = 3600


# ---- check_config ----------------------------------------------------------------------------------

@pytest.mark.parametrize("config, bad", [
    ({"hostnames": ["bad_name!.example.org"]}, "bad_name!.example.org"),
    ({"hostnames": ["-leading.example.org"]}, "-leading.example.org"),
    ({"hostnames": ["a..example.org"]}, "a..example.org"),
    ({"hostnames": ["%s.example.org" % ("x" * 64)]}, "x" * 64),
    ({"hostnames": ["192.0.2.7"]}, "192.0.2.7"),
    ({"hostnames": ["home.example.org", "10.1.2.3."]}, "10.1.2.3."),
    ({"static": ["192.0.2.0/33"]}, "192.0.2.0/33"),
    ({"static": ["192.0.2.300"]}, "192.0.2.300"),
    ({"static": ["2001:db8::/129"]}, "2001:db8::/129"),
    ({"static": ["not-an-address"]}, "not-an-address"),
    ({"static": ["192.0.2.1-192.0.2.9"]}, "192.0.2.1-192.0.2.9"),
    ({"hostnames": ["home.example.org"], "ports": [0]}, "0"),
    ({"hostnames": ["home.example.org"], "ports": [8096, 70000]}, "70000"),
    ({"hostnames": ["home.example.org"], "ports": [True]}, "True"),
    ({"hostnames": ["home.example.org"], "nameservers": ["dns.example.org"]}, "dns.example.org"),
    ({"hostnames": ["home.example.org"], "nameservers": ["192.0.2.53:0"]}, "192.0.2.53:0"),
    ({"hostnames": ["home.example.org"], "nameservers": ["192.0.2.53:99999"]}, "192.0.2.53:99999"),
    ({"hostnames": ["home.example.org"], "nameservers": ["[2001:db8::53]:port"]}, "[2001:db8::53]:port"),
    ({"hostnames": ["home.example.org"], "set_name": "Jellyfin-Allow"}, "Jellyfin-Allow"),
    ({"hostnames": ["home.example.org"], "set_name": "a" * 25}, "a" * 25),
    ({"hostnames": ["home.example.org"], "set_name": "9lives"}, "9lives"),
    ({"hostnames": ["home.example.org"], "backend": "iptables"}, "iptables"),
    ({"hostnames": ["home.example.org"], "keep_unresolved_for": -1}, "-1"),
    ({"hostnames": ["home.example.org"], "timeout": 0}, "timeout 0"),
    ({"hostnames": ["home.example.org"], "state_file": "relative/allow.json"}, "relative/allow.json"),
    ({"hostnames": ["home.example.org"], "hostname": ["typo.example.org"]}, "hostname"),
])
def test_check_config_names_the_bad_value(config, bad):
    with pytest.raises(ddns_allowlist.AllowlistError) as failure:
        ddns_allowlist.check_config(config)
    assert bad in str(failure.value), str(failure.value)


def test_check_config_address_looking_hostname_points_to_static():
    with pytest.raises(ddns_allowlist.AllowlistError, match="looks like an address.*static"):
        ddns_allowlist.check_config({"hostnames": ["198.51.100.7"]})


def test_check_config_wants_hostnames_or_static():
    with pytest.raises(ddns_allowlist.AllowlistError, match="hostnames and static"):
        ddns_allowlist.check_config({})
    with pytest.raises(ddns_allowlist.AllowlistError, match="hostnames and static"):
        ddns_allowlist.check_config({"hostnames": [], "static": [], "ports": [8096]})
    # Emptying needs neither.
    assert ddns_allowlist.check_config({"state": "absent"})["hostnames"] == []


def test_check_config_normalizes():
    conf = ddns_allowlist.check_config({
        "hostnames": ["Home.Example.ORG.", "home.example.org", "bob.example.net", "_dmarc-ish.example.net"],
        "static": ["192.0.2.0/25", " 192.0.2.128/25 ", "198.51.100.9/24", "2001:db8::1", "2001:db8::/64", "::ffff:203.0.113.5"],
        "ports": [8920, 8096, 8096],
        "nameservers": ["192.0.2.53", "192.0.2.54:5353", "2001:db8::53", "[2001:db8::54]:5300", "[2001:db8::55]"],
        "set_name": "friends",
        "keep_unresolved_for": None,
    })
    assert conf["hostnames"] == ["_dmarc-ish.example.net", "bob.example.net", "home.example.org"]
    # Adjacent halves merge, a host bit set is cut to its network, the v4-mapped address is IPv4, the host in its /64 goes.
    assert conf["static_cidrs"] == {"v4": ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.5"], "v6": ["2001:db8::/64"]}
    assert conf["ports"] == [8096, 8920]
    assert conf["nameservers"] == [("192.0.2.53", 53), ("192.0.2.54", 5353), ("2001:db8::53", 53), ("2001:db8::54", 5300),
                                   ("2001:db8::55", 53)]
    # None means the default; the state file follows the set name.
    assert conf["keep_unresolved_for"] == 86400
    assert conf["state_file"] == "/var/lib/jellyfin-hardening/friends.json"


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.53", ("192.0.2.53", 53)),
    (" 192.0.2.53:1053 ", ("192.0.2.53", 1053)),
    ("::1", ("::1", 53)),
    ("[::1]:65535", ("::1", 65535)),
])
def test_parse_nameserver(text, expected):
    assert ddns_allowlist.parse_nameserver(text) == expected


def test_check_hostname_lowercases_and_drops_the_trailing_dot():
    assert ddns_allowlist.check_hostname("Alice.DuckDNS.org.") == "alice.duckdns.org"
    assert ddns_allowlist.check_hostname("xn--bcher-kva.example") == "xn--bcher-kva.example"


# ---- decide ----------------------------------------------------------------------------------------

def answered(v4=None, v6=None, at=NOW):
    """A memory entry with both families answered at `at`."""
    return {"v4": {"addresses": list(v4 or []), "at": at}, "v6": {"addresses": list(v6 or []), "at": at}}


def test_decide_takes_answers_sorted():
    memory, kept, unresolved, hold = ddns_allowlist.decide(
        ["a.example"], {}, {"a.example": {"v4": ["192.0.2.2", "192.0.2.1"], "v6": []}}, NOW, KEEP)
    assert memory == {"a.example": {"v4": {"addresses": ["192.0.2.1", "192.0.2.2"], "at": NOW}, "v6": {"addresses": [], "at": NOW}}}
    assert (kept, unresolved, hold) == ({}, [], [])


def test_decide_failed_family_keeps_its_answer_within_keep_for():
    remembered = {"a.example": answered(["192.0.2.1"], ["2001:db8::1"], at=NOW)}
    answers = {"a.example": {"v4": ["192.0.2.9"], "v6": None}}
    memory, kept, unresolved, hold = ddns_allowlist.decide(["a.example"], remembered, answers, NOW + KEEP, KEEP)
    assert memory["a.example"]["v6"] == {"addresses": ["2001:db8::1"], "at": NOW}, "the old answer keeps its own time"
    assert memory["a.example"]["v4"] == {"addresses": ["192.0.2.9"], "at": NOW + KEEP}
    assert kept == {"a.example": ["2001:db8::1"]}
    assert unresolved == [] and hold == []


def test_decide_failed_family_drops_its_answer_after_keep_for():
    remembered = {"a.example": answered(["192.0.2.1"], ["2001:db8::1"], at=NOW)}
    answers = {"a.example": {"v4": ["192.0.2.9"], "v6": None}}
    memory, kept, unresolved, hold = ddns_allowlist.decide(["a.example"], remembered, answers, NOW + KEEP + 1, KEEP)
    assert "v6" not in memory["a.example"] and kept == {}
    assert unresolved == [] and hold == []


def test_decide_both_failed_within_keep_for_is_unresolved_but_kept():
    remembered = {"a.example": answered(["192.0.2.1", "192.0.2.2"], ["2001:db8::1"], at=NOW)}
    failing = {"a.example": {"v4": None, "v6": None}}
    memory, kept, unresolved, hold = ddns_allowlist.decide(["a.example"], remembered, failing, NOW + 10, KEEP)
    assert memory == remembered
    assert kept == {"a.example": ["192.0.2.1", "192.0.2.2", "2001:db8::1"]}
    assert unresolved == ["a.example"] and hold == []


def test_decide_empty_answer_replaces():
    remembered = {"a.example": answered(["192.0.2.1"], ["2001:db8::1"], at=NOW)}
    memory, kept, unresolved, hold = ddns_allowlist.decide(["a.example"], remembered, {"a.example": {"v4": [], "v6": []}}, NOW + 5, KEEP)
    assert memory == {"a.example": answered([], [], at=NOW + 5)}
    assert (kept, unresolved, hold) == ({}, [], [])


def test_decide_unknown_name_holds_until_keep_for_ends():
    failing = {"new.example": {"v4": None, "v6": None}}
    memory, kept, unresolved, hold = ddns_allowlist.decide(["new.example"], {}, failing, NOW, KEEP)
    assert memory == {"new.example": {"unknown_since": NOW}}
    assert kept == {} and unresolved == ["new.example"] and hold == ["new.example"]
    # Still failing at the end of keep_for: the mark keeps its first time and still holds.
    memory, _kept, unresolved, hold = ddns_allowlist.decide(["new.example"], memory, failing, NOW + KEEP, KEEP)
    assert memory == {"new.example": {"unknown_since": NOW}} and hold == ["new.example"]
    # One second later the hold ends; the name is still unresolved.
    memory, _kept, unresolved, hold = ddns_allowlist.decide(["new.example"], memory, failing, NOW + KEEP + 1, KEEP)
    assert hold == [] and unresolved == ["new.example"] and memory == {"new.example": {"unknown_since": NOW}}


def test_decide_unknown_name_that_answers_loses_its_mark():
    memory, _kept, _unresolved, hold = ddns_allowlist.decide(
        ["new.example"], {"new.example": {"unknown_since": NOW}}, {"new.example": {"v4": ["192.0.2.4"], "v6": None}}, NOW + 1, KEEP)
    assert memory == {"new.example": {"v4": {"addresses": ["192.0.2.4"], "at": NOW + 1}}} and hold == []


def test_decide_expired_name_does_not_hold():
    remembered = {"old.example": answered(["192.0.2.1"], [], at=NOW)}
    failing = {"old.example": {"v4": None, "v6": None}}
    memory, kept, unresolved, hold = ddns_allowlist.decide(["old.example"], remembered, failing, NOW + KEEP + 1, KEEP)
    assert memory == {"old.example": {}} and kept == {} and unresolved == ["old.example"] and hold == []
    # ... and it does not start to hold on the next run either.
    memory, kept, unresolved, hold = ddns_allowlist.decide(["old.example"], memory, failing, NOW + KEEP + 2, KEEP)
    assert memory == {"old.example": {}} and hold == []


def test_decide_clock_going_back_keeps():
    remembered = {"a.example": answered(["192.0.2.1"], [], at=NOW)}
    memory, kept, _unresolved, _hold = ddns_allowlist.decide(["a.example"], remembered, {}, NOW - 10 * KEEP, KEEP)
    assert memory == remembered and kept == {"a.example": ["192.0.2.1"]}


def test_decide_forgets_names_no_longer_configured():
    remembered = {"gone.example": answered(["192.0.2.1"]), "a.example": answered(["192.0.2.2"])}
    memory, _kept, _unresolved, _hold = ddns_allowlist.decide(["a.example"], remembered, {"a.example": {"v4": None, "v6": None}}, NOW, KEEP)
    assert list(memory) == ["a.example"]


def test_allowed_cidrs_merges_static_and_memory():
    memory = {"a.example": answered(["192.0.2.1", "192.0.2.0"], ["2001:db8::1"]), "b.example": {"unknown_since": NOW},
              "c.example": {"v4": {"addresses": ["198.51.100.7", "192.0.2.1"], "at": NOW}}}
    assert ddns_allowlist.allowed_cidrs({"v4": ["10.0.0.0/8"], "v6": []}, memory) == {
        "v4": ["10.0.0.0/8", "192.0.2.0/31", "198.51.100.7"], "v6": ["2001:db8::1"]}
    assert ddns_allowlist.allowed_cidrs({}, {}) == {"v4": [], "v6": []}


def test_allowed_cidrs_covers_a_v4_mapped_aaaa_answer():
    # An AAAA record may hold ::ffff:a.b.c.d; whatever is allowed for it, it must not be some other address.
    memory = {"a.example": {"v6": {"addresses": ["::ffff:192.0.2.1"], "at": NOW}}}
    allowed = ddns_allowlist.allowed_cidrs({}, memory)
    address = ipaddress.ip_address("::ffff:192.0.2.1")
    assert any(address in ipaddress.ip_network(n) for n in allowed["v6"]) or "192.0.2.1" in allowed["v4"], (
        "the v4-mapped AAAA answer ::ffff:192.0.2.1 became %r (::192.0.2.1 is ::c000:201, another address)" % (allowed,))


# ---- decide, property-based ------------------------------------------------------------------------

NAME_POOL = ["a.example", "b.example", "c.example", "d.example"]
ADDRESS_POOL = {"v4": ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.7"],
                "v6": ["2001:db8::", "2001:db8::1", "2001:db8::ffff", "2001:db8:1::7"]}
STATIC_POOL = {"v4": ["10.0.0.0/8", "192.0.2.2/31"], "v6": ["fd00::/8"]}


def _family_answer(family):
    return st.one_of(st.none(), st.lists(st.sampled_from(ADDRESS_POOL[family]), max_size=3, unique=True))


@st.composite
def scenarios(draw, outages=False):
    """(names, static_cidrs, keep_for, [(seconds, {name: {family: None or [addr]}})])."""
    names = sorted(draw(st.sets(st.sampled_from(NAME_POOL), min_size=1)))
    static = {f: draw(st.lists(st.sampled_from(STATIC_POOL[f]), unique=True)) for f in ddns_allowlist.FAMILIES}
    keep_for = draw(st.integers(0, 86400))
    steps = []
    for _index in range(draw(st.integers(1, 10))):
        seconds = draw(st.integers(0, 2 * keep_for))
        if outages and draw(st.booleans()):
            answers = {name: {"v4": None, "v6": None} for name in names}
        else:
            answers = {name: {f: draw(_family_answer(f)) for f in ddns_allowlist.FAMILIES} for name in names}
        steps.append((seconds, answers))
    return names, static, keep_for, steps


def _networks(allowed):
    return [ipaddress.ip_network(n) for f in ddns_allowlist.FAMILIES for n in allowed[f]]


def _covered(network, networks):
    return any(network.version == n.version and network.subnet_of(n) for n in networks)


def _run(scenario, check):
    """Feed decide() step by step, its memory passing through the state file as in apply()."""
    names, static, keep_for, steps = scenario
    now, remembered = NOW, {}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "allow.json")
        for seconds, answers in steps:
            now += seconds
            memory, _kept, _unresolved, _hold = ddns_allowlist.decide(names, remembered, answers, now, keep_for)
            check(now, remembered, answers, memory)
            ddns_allowlist.save_state(path, memory, now)
            remembered, problem = ddns_allowlist.load_state(path)
            assert problem is None, problem


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios())
def test_property_fresh_answers_are_always_allowed(scenario):
    names, static, keep_for, _steps = scenario
    last = {}  # (name, family) -> (time, addresses) of the last successful answer

    def check(now, _remembered, answers, memory):
        for name in names:
            for family in ddns_allowlist.FAMILIES:
                if answers[name][family] is not None:
                    last[(name, family)] = (now, answers[name][family])
        allowed = _networks(ddns_allowlist.allowed_cidrs(static, memory))
        for (name, family), (at, addresses) in last.items():
            if now - at <= keep_for:
                for address in addresses:
                    assert _covered(ipaddress.ip_network(address), allowed), (
                        "%s %s answered %s at %d (%d s ago, keep_for %d) but %s is not allowed: %s"
                        % (name, family, addresses, at, now - at, keep_for, address, allowed))

    _run(scenario, check)


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios(outages=True))
@example(scenario=(["a.example", "b.example"], {"v4": [], "v6": []}, 100, [
    (0, {"a.example": {"v4": ["192.0.2.1"], "v6": ["2001:db8::1"]}, "b.example": {"v4": None, "v6": ["2001:db8::ffff"]}}),
    (100, {"a.example": {"v4": None, "v6": None}, "b.example": {"v4": None, "v6": None}}),
]))
def test_property_an_outage_never_shrinks_the_allowed_set_within_keep_for(scenario):
    names, static, keep_for, _steps = scenario

    def check(now, remembered, answers, memory):
        if any(answers[name][family] is not None for name in names for family in ddns_allowlist.FAMILIES):
            return
        ages = [now - item["at"] for entry in remembered.values() for key, item in entry.items() if key in ddns_allowlist.FAMILIES]
        if any(age > keep_for for age in ages):
            return
        before = _networks(ddns_allowlist.allowed_cidrs(static, remembered))
        after = _networks(ddns_allowlist.allowed_cidrs(static, memory))
        lost = [n for n in before if not _covered(n, after)]
        assert not lost, "an outage %s s within keep_for %d removed %s" % (ages, keep_for, lost)
        # Nothing appears from nowhere either: no answer means no new address.
        assert sorted(map(str, before)) == sorted(map(str, after))

    _run(scenario, check)


# ---- apply() with a fake resolver and a fake set pair ------------------------------------------------

@pytest.fixture(name="lab")
def fixture_lab(tmp_path, monkeypatch):
    """A fake nftables set pair and a fake DNS: lab['dns'][name][family] is a list, or None for a failure."""
    lab = {"sets": {"v4": [], "v6": []}, "writes": 0, "asked": [], "dns": {}}

    def read_sets(name, backend):
        assert (name, backend) == ("jellyfin_allow", "nftables")
        return {f: (list(v) if v is not None else None) for f, v in lab["sets"].items()}

    def write_sets(name, backend, wanted):
        assert (name, backend) == ("jellyfin_allow", "nftables")
        lab["sets"] = {f: list(v) for f, v in wanted.items()}
        lab["writes"] += 1

    def lookup(name, family, timeout):
        lab["asked"].append((name, family, timeout))
        found = lab["dns"].get(name, {}).get(family)
        if found is None:
            raise dns_query.DnsFailure("%s type %s at 192.0.2.53 port 53: SERVFAIL" % (name, ddns_allowlist.RRTYPES[family]))
        return list(found)

    monkeypatch.setattr(ddns_allowlist.model_sets, "read_sets", read_sets)
    monkeypatch.setattr(ddns_allowlist.model_sets, "write_sets", write_sets)
    lab["lookup"] = lookup
    lab["state"] = tmp_path / "state" / "jellyfin_allow.json"
    lab["lock"] = str(tmp_path / "lock" / "allowlist.lock")
    lab["conf"] = {"hostnames": ["alice.example.net", "bob.example.net"], "state_file": str(lab["state"]), "keep_unresolved_for": KEEP}
    lab["dns"] = {"alice.example.net": {"v4": ["198.51.100.1"], "v6": ["2001:db8::a"]},
                  "bob.example.net": {"v4": ["198.51.100.20", "198.51.100.30"], "v6": []}}
    return lab


def run(lab, now, **kwargs):
    config = dict(lab["conf"], **kwargs.pop("conf", {}))
    return ddns_allowlist.apply(config, lock_file=lab["lock"], now=now, lookup=lab["lookup"], **kwargs)


def test_apply_first_run_adds_and_second_run_changes_nothing(lab):
    first = run(lab, NOW)
    assert first["changed"] and lab["writes"] == 1
    assert lab["sets"] == {"v4": ["198.51.100.1", "198.51.100.20", "198.51.100.30"], "v6": ["2001:db8::a"]}
    assert first["added"] == ["198.51.100.1", "198.51.100.20", "198.51.100.30", "2001:db8::a"] and first["removed"] == []
    assert first["allowed"] == first["added"] and first["unresolved"] == [] and first["kept"] == {}
    assert sorted(lab["asked"]) == [(n, f, 5) for n in ("alice.example.net", "bob.example.net") for f in ("v4", "v6")]
    second = run(lab, NOW + 300)
    assert not second["changed"], second
    assert lab["writes"] == 1, "an unchanged allowlist is not written again"
    assert second["added"] == [] and second["removed"] == [] and second["allowed"] == first["allowed"]


def test_apply_record_change_swaps_exactly(lab):
    run(lab, NOW)
    lab["dns"]["bob.example.net"]["v4"] = ["198.51.100.30", "203.0.113.4"]
    result = run(lab, NOW + 300)
    assert result["changed"] and lab["writes"] == 2
    assert result["added"] == ["203.0.113.4"] and result["removed"] == ["198.51.100.20"]
    assert lab["sets"] == {"v4": ["198.51.100.1", "198.51.100.30", "203.0.113.4"], "v6": ["2001:db8::a"]}


def test_apply_shared_address_stays_while_one_name_has_it(lab):
    lab["dns"] = {"alice.example.net": {"v4": ["203.0.113.7"], "v6": []}, "bob.example.net": {"v4": ["203.0.113.7"], "v6": []}}
    run(lab, NOW)
    assert lab["sets"]["v4"] == ["203.0.113.7"]
    lab["dns"]["bob.example.net"]["v4"] = ["203.0.113.9"]
    result = run(lab, NOW + 300)
    assert result["removed"] == [] and result["added"] == ["203.0.113.9"]
    assert lab["sets"]["v4"] == ["203.0.113.7", "203.0.113.9"]
    lab["dns"]["alice.example.net"]["v4"] = []
    result = run(lab, NOW + 600)
    assert result["removed"] == ["203.0.113.7"] and lab["sets"]["v4"] == ["203.0.113.9"]


def test_apply_resolver_outage_removes_nothing_until_keep_for_ends(lab):
    run(lab, NOW)
    before = dict(lab["sets"])
    lab["dns"] = {}
    result = run(lab, NOW + KEEP)
    assert result["removed"] == [] and lab["sets"] == before and lab["writes"] == 1
    assert result["unresolved"] == ["alice.example.net", "bob.example.net"]
    assert result["kept"] == {"alice.example.net": ["198.51.100.1", "2001:db8::a"], "bob.example.net": ["198.51.100.20", "198.51.100.30"]}
    assert len(result["resolver_errors"]) == 4 and all("SERVFAIL" in e for e in result["resolver_errors"])
    assert not result["changed"], "the memory is unchanged and so is the firewall"
    # keep_unresolved_for counts from the last answer, not from the last run.
    result = run(lab, NOW + KEEP + 1)
    assert result["changed"] and sorted(result["removed"]) == ["198.51.100.1", "198.51.100.20", "198.51.100.30", "2001:db8::a"]
    assert lab["sets"] == {"v4": [], "v6": []} and result["kept"] == {}


def test_apply_offline_keeps_every_name_and_asks_nobody(lab):
    run(lab, NOW)
    before, asked = dict(lab["sets"]), len(lab["asked"])
    result = run(lab, NOW + 60, offline=True)
    assert len(lab["asked"]) == asked and lab["sets"] == before and result["removed"] == []
    assert result["unresolved"] == ["alice.example.net", "bob.example.net"]


def test_apply_lost_state_file_holds_every_removal(lab):
    lab["sets"] = {"v4": ["198.51.100.1", "203.0.113.50"], "v6": ["2001:db8::a"]}
    lab["dns"] = {"bob.example.net": {"v4": ["198.51.100.2"], "v6": []}}
    result = run(lab, NOW)
    assert result["removed"] == [] and result["added"] == ["198.51.100.2"]
    assert lab["sets"] == {"v4": ["198.51.100.1", "198.51.100.2", "203.0.113.50"], "v6": ["2001:db8::a"]}
    assert any("alice.example.net" in w and "no address is removed" in w for w in result["warnings"]), result["warnings"]
    assert json.loads(lab["state"].read_text())["names"]["alice.example.net"] == {"unknown_since": NOW}
    # Still within keep_for: still held.
    assert run(lab, NOW + KEEP)["removed"] == []
    # After it: what only the firewall had leaves.
    result = run(lab, NOW + KEEP + 1)
    assert sorted(result["removed"]) == ["198.51.100.1", "2001:db8::a", "203.0.113.50"]
    assert lab["sets"] == {"v4": ["198.51.100.2"], "v6": []}


def test_apply_check_mode_changes_neither_firewall_nor_state(lab):
    result = run(lab, NOW, check_mode=True, want_diff=True)
    assert result["changed"] and result["added"] == ["198.51.100.1", "198.51.100.20", "198.51.100.30", "2001:db8::a"]
    assert result["diff"]["before"] == "" and result["diff"]["after"] == "198.51.100.1\n198.51.100.20\n198.51.100.30\n2001:db8::a\n"
    assert lab["writes"] == 0 and lab["sets"] == {"v4": [], "v6": []} and not lab["state"].exists()
    run(lab, NOW + 10)
    saved = lab["state"].read_bytes()
    lab["dns"]["alice.example.net"]["v4"] = ["203.0.113.1"]
    result = run(lab, NOW + 20, check_mode=True)
    assert result["changed"] and result["added"] == ["203.0.113.1"] and result["removed"] == ["198.51.100.1"]
    assert lab["writes"] == 1 and "198.51.100.1" in lab["sets"]["v4"] and lab["state"].read_bytes() == saved


def test_apply_firewall_not_state_file_is_the_truth(lab):
    run(lab, NOW)
    lab["sets"]["v4"].remove("198.51.100.1")
    lab["sets"]["v6"].append("2001:db8::bad")
    result = run(lab, NOW + 60)
    assert result["changed"] and result["added"] == ["198.51.100.1"] and result["removed"] == ["2001:db8::bad"]
    assert lab["sets"] == {"v4": ["198.51.100.1", "198.51.100.20", "198.51.100.30"], "v6": ["2001:db8::a"]}


def test_apply_state_file_is_private_and_records_the_answers(lab):
    old = os.umask(0o022)
    try:
        run(lab, NOW)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(lab["state"]).st_mode) == 0o600
    data = json.loads(lab["state"].read_text())
    assert data["updated"] == NOW
    assert data["names"]["bob.example.net"] == {"v4": {"addresses": ["198.51.100.20", "198.51.100.30"], "at": NOW},
                                                "v6": {"addresses": [], "at": NOW}}
    # Rewritten on a later run: still 0600, and no temporary file left behind.
    run(lab, NOW + 60)
    assert stat.S_IMODE(os.stat(lab["state"]).st_mode) == 0o600
    assert os.listdir(lab["state"].parent) == [lab["state"].name]


def test_apply_state_absent_empties_and_forgets(lab):
    run(lab, NOW)
    result = run(lab, NOW + 60, conf={"state": "absent"})
    assert result["changed"] and lab["sets"] == {"v4": [], "v6": []} and not lab["state"].exists()
    assert sorted(result["removed"]) == ["198.51.100.1", "198.51.100.20", "198.51.100.30", "2001:db8::a"]
    again = run(lab, NOW + 120, conf={"state": "absent", "hostnames": []})
    assert not again["changed"] and lab["writes"] == 2


def test_apply_refuses_when_the_sets_do_not_exist(lab):
    lab["sets"] = {"v4": None, "v6": None}
    with pytest.raises(ddns_allowlist.AllowlistError, match="jellyfin_allow_v4"):
        run(lab, NOW)
    assert lab["writes"] == 0 and not lab["state"].exists()
    # Check mode reports what it would do.
    assert run(lab, NOW, check_mode=True)["added"] == ["198.51.100.1", "198.51.100.20", "198.51.100.30", "2001:db8::a"]


def test_apply_static_is_always_allowed(lab):
    lab["dns"] = {}
    result = run(lab, NOW, conf={"static": ["192.168.1.0/24"]})
    assert lab["sets"] == {"v4": ["192.168.1.0/24"], "v6": []} and result["added"] == ["192.168.1.0/24"]


def test_load_state_damaged_or_missing(tmp_path):
    assert ddns_allowlist.load_state(str(tmp_path / "nothing.json")) == ({}, None)
    damaged = tmp_path / "damaged.json"
    for text in ("{", '{"names": {"a": {"v4": {"addresses": "192.0.2.1", "at": 1}}}}', '{"names": {"a": {"v5": {}}}}', "[]"):
        damaged.write_text(text)
        names, problem = ddns_allowlist.load_state(str(damaged))
        assert names == {} and "damaged" in problem, (text, problem)


# ---- ufw -------------------------------------------------------------------------------------------

OURS = "comment=" + binascii.hexlify(b"jellyfin_allow").decode()
UFW_CONF = {"set_name": "jellyfin_allow", "protocol": "tcp", "ports": [8096]}
V4_HEAD = ["*filter", ":ufw-user-input - [0:0]", ":ufw-user-output - [0:0]", "### RULES ###", ""]
V4_TAIL = ["", "### END RULES ###", "COMMIT"]


def tuple_line(action, src, port="8096", proto="tcp", family="v4", direction="in", comment=OURS):
    dst = ddns_allowlist.UFW_ANY[family]
    line = "### tuple ### %s %s %s %s any %s %s" % (action, proto, port, dst, src, direction)
    return line + (" " + comment if comment else "")


def write_rules(tmp_path, v4=(), v6=()):
    """user.rules and user6.rules with these tuple lines (each followed by its iptables line, as ufw writes them)."""
    files = {}
    for family, lines in (("v4", v4), ("v6", v6)):
        body = list(V4_HEAD)
        for line in lines:
            body += [line, "-A ufw-user-input -p tcp --dport 8096 -j ACCEPT", ""]
        path = tmp_path / ("user.rules" if family == "v4" else "user6.rules")
        path.write_text("\n".join(body + V4_TAIL) + "\n")
        files[family] = str(path)
    return files


def plan(tmp_path, allowed, v4=(), v6=(), families=ddns_allowlist.FAMILIES, conf=None):
    rules = ddns_allowlist.ufw_rules(write_rules(tmp_path, v4, v6))
    return ddns_allowlist.ufw_plan(dict(UFW_CONF, **(conf or {})), allowed, rules, families)


def test_ufw_rules_reads_the_tuples(tmp_path):
    files = write_rules(tmp_path, v4=[
        "### tuple ### allow tcp 8096 0.0.0.0/0 any 198.51.100.1 in comment=6a656c6c7966696e5f616c6c6f77",
        "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
        "### tuple ### allow any 8096 0.0.0.0/0 any 0.0.0.0/0 Jellyfin - in comment=6a6f6e",
        "### tuple ### deny tcp 8096 0.0.0.0/0 any 0.0.0.0/0 in comment=zz",
        "### tuple ### allow tcp 8096",
    ], v6=["### tuple ### allow tcp 8096 ::/0 any 2001:db8::1 in comment=6a656c6c7966696e5f616c6c6f77"])
    rules = ddns_allowlist.ufw_rules(files)
    assert [(r["family"], r["action"], r["proto"], r["dport"], r["dst"], r["src"], r["direction"], r["comment"]) for r in rules] == [
        ("v4", "allow", "tcp", "8096", "0.0.0.0/0", "198.51.100.1", "in", "jellyfin_allow"),
        ("v4", "allow", "tcp", "22", "0.0.0.0/0", "0.0.0.0/0", "in", ""),
        ("v4", "allow", "any", "8096", "0.0.0.0/0", "0.0.0.0/0", "in", "jon"),
        ("v4", "deny", "tcp", "8096", "0.0.0.0/0", "0.0.0.0/0", "in", "?"),
        ("v6", "allow", "tcp", "8096", "::/0", "2001:db8::1", "in", "jellyfin_allow"),
    ]
    indexes = [r["index"] for r in rules if r["family"] == "v4"]
    assert indexes == sorted(indexes) and len(set(indexes)) == 4
    assert ddns_allowlist.ufw_rules({"v4": str(tmp_path / "absent.rules")}) == []


def test_ufw_plan_fresh_install_prepends_allows_and_appends_one_deny_per_family_and_port(tmp_path):
    add, delete, errors = plan(tmp_path, {"v4": ["198.51.100.1", "203.0.113.0/24"], "v6": ["2001:db8::1"]},
                               conf={"ports": [8096, 8920]})
    assert delete == [] and errors == []
    assert sorted(a for a in add if a[0] == "prepend") == sorted(
        ("prepend", "allow", net, port) for net in ("198.51.100.1", "203.0.113.0/24", "2001:db8::1") for port in (8096, 8920))
    assert [a for a in add if a[0] == "append"] == [
        ("append", "deny", "0.0.0.0/0", 8096), ("append", "deny", "0.0.0.0/0", 8920), ("append", "deny", "::/0", 8096), ("append", "deny", "::/0", 8920)]


def test_ufw_plan_in_place_changes_nothing(tmp_path):
    add, delete, errors = plan(tmp_path, {"v4": ["198.51.100.1", "203.0.113.0/24"], "v6": ["2001:db8::1"]}, v4=[
        tuple_line("allow", "198.51.100.1"), tuple_line("allow", "203.0.113.0/24"), tuple_line("allow", "0.0.0.0/0", port="22", comment=""),
        tuple_line("deny", "0.0.0.0/0")], v6=[tuple_line("allow", "2001:db8::1", family="v6"), tuple_line("deny", "::/0", family="v6")])
    assert (add, delete, errors) == ([], [], [])


@pytest.mark.parametrize("keep, gone", [("198.51.100.10", "198.51.100.1"), ("198.51.100.1", "198.51.100.10")])
def test_ufw_plan_matches_addresses_exactly(tmp_path, keep, gone):
    add, delete, errors = plan(tmp_path, {"v4": [keep], "v6": []}, v4=[
        tuple_line("allow", "198.51.100.1"), tuple_line("allow", "198.51.100.10"), tuple_line("deny", "0.0.0.0/0")],
        v6=[tuple_line("deny", "::/0", family="v6")])
    assert [r["src"] for r in delete] == [gone] and add == [] and errors == []


def test_ufw_plan_duplicate_and_stale_rules_of_ours_are_deleted(tmp_path):
    add, delete, _errors = plan(tmp_path, {"v4": ["198.51.100.1"], "v6": []}, v4=[
        tuple_line("allow", "198.51.100.1"), tuple_line("allow", "198.51.100.1"), tuple_line("allow", "198.51.100.1", proto="udp"),
        tuple_line("allow", "198.51.100.1", port="9999"), tuple_line("deny", "0.0.0.0/0")],
        v6=[tuple_line("deny", "::/0", family="v6")])
    assert add == []
    assert [(r["src"], r["proto"], r["dport"]) for r in delete] == [
        ("198.51.100.1", "tcp", "8096"), ("198.51.100.1", "udp", "8096"), ("198.51.100.1", "tcp", "9999")]


def test_ufw_plan_misordered_deny_is_deleted_and_appended_again(tmp_path):
    add, delete, errors = plan(tmp_path, {"v4": ["198.51.100.1"], "v6": ["2001:db8::1"]}, v4=[
        tuple_line("deny", "0.0.0.0/0"), tuple_line("allow", "198.51.100.1")], v6=[
        tuple_line("allow", "2001:db8::1", family="v6"), tuple_line("deny", "::/0", family="v6")])
    assert [(r["family"], r["action"]) for r in delete] == [("v4", "deny")]
    assert add == [("append", "deny", "0.0.0.0/0", 8096)] and errors == []


def test_ufw_plan_reports_someone_elses_rule_open_to_everyone(tmp_path):
    _add, _delete, errors = plan(tmp_path, {"v4": ["198.51.100.1"], "v6": []}, v4=[
        "### tuple ### allow any 8096 0.0.0.0/0 any 0.0.0.0/0 in",
        tuple_line("allow", "0.0.0.0/0", port="22", comment=""),
        tuple_line("allow", "192.168.1.0/24", comment=""),
        tuple_line("allow", "0.0.0.0/0", proto="udp", comment=""),
        tuple_line("deny", "0.0.0.0/0", comment=""),
        tuple_line("allow", "0.0.0.0/0", port="8000:9000", comment=""),
    ], v6=[tuple_line("allow", "::/0", port="80,8096", family="v6", comment="")])
    assert len(errors) == 3, errors
    assert "8096" in errors[0] and "IPv4" in errors[0] and "anywhere" in errors[0]
    assert "8000:9000" in errors[1] and "IPv6" in errors[2]


@pytest.mark.parametrize("line", [
    "### tuple ### allow_log tcp 8096 0.0.0.0/0 any 0.0.0.0/0 in",
    "### tuple ### allow tcp 8096 0.0.0.0/0 any 0.0.0.0/0 in_eth0",
    "### tuple ### limit tcp 8096 0.0.0.0/0 any 0.0.0.0/0 in",
], ids=["allow_log", "allow in on eth0", "limit"])
def test_ufw_plan_reports_every_kind_of_rule_open_to_everyone(tmp_path, line):
    # ufw writes 'allow in on eth0' as direction in_eth0, and 'limit' accepts everyone below the rate.
    _add, _delete, errors = plan(tmp_path, {"v4": ["198.51.100.1"], "v6": []}, v4=[line])
    assert len(errors) == 1, "%r lets everyone reach port 8096 but is not reported: %r" % (line, errors)


def test_ufw_plan_ipv6_off_adds_nothing_for_v6(tmp_path):
    add, delete, errors = plan(tmp_path, {"v4": ["198.51.100.1"], "v6": ["2001:db8::1"]}, families=("v4",))
    assert add == [("prepend", "allow", "198.51.100.1", 8096), ("append", "deny", "0.0.0.0/0", 8096)]
    assert delete == [] and errors == []


def test_ufw_plan_ipv6_off_leaves_v6_rules_alone(tmp_path):
    # With IPV6=no ufw refuses every IPv6 rule command ('IPv6 support not enabled'): the plan must not contain one.
    add, delete, _errors = plan(tmp_path, {"v4": ["198.51.100.1"], "v6": ["2001:db8::1"]}, families=("v4",), v4=[
        tuple_line("allow", "198.51.100.1"), tuple_line("deny", "0.0.0.0/0")], v6=[
        tuple_line("allow", "2001:db8::1", family="v6"), tuple_line("deny", "::/0", family="v6")])
    assert add == []
    assert [r for r in delete if r["family"] == "v6"] == [], (
        "with IPv6 off the plan deletes v6 rules (ufw would refuse): %r" % ([r["src"] for r in delete],))


def test_a_name_of_253_characters_may_end_with_the_root_dot():
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name) == 253
    assert ddns_allowlist.check_hostname(name + ".") == name
    with pytest.raises(ddns_allowlist.AllowlistError, match="is not a valid DNS name"):
        ddns_allowlist.check_hostname("c" + name)


@pytest.mark.parametrize("key", ["hostnames", "static", "nameservers"])
def test_a_string_where_a_list_belongs_is_refused_not_split_into_letters(key):
    config = {"hostnames": ["alice.example.org"], key: "myhost"}
    with pytest.raises(ddns_allowlist.AllowlistError, match="%s must be a list, got 'myhost'" % key):
        ddns_allowlist.check_config(config)
