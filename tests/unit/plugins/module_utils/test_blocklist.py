"""apply()'s decisions: when the set in force may change and when it must not (the kernel runs in Molecule)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import blocklist, model_sets

LIST = "".join("198.51.%d.0/24\n" % i for i in range(0, 64, 2))  # 32 entries that do not merge


@pytest.fixture(name="lab")
def fixture_lab(tmp_path, monkeypatch):
    """A fake pair of sets; sources are real files read through file:// URLs."""
    state = {"sets": {"v4": [], "v6": []}, "writes": 0}
    monkeypatch.setattr(model_sets, "read_sets", lambda name, backend: {k: (list(v) if v is not None else None) for k, v in state["sets"].items()})

    def write(name, backend, wanted):
        state["sets"] = {k: list(v) for k, v in wanted.items()}
        state["writes"] += 1
    monkeypatch.setattr(model_sets, "write_sets", write)
    monkeypatch.setattr(blocklist, "host_addresses", lambda: ["198.51.62.9"])
    source = tmp_path / "list.txt"
    source.write_text(LIST)
    state["source"] = source
    state["conf"] = {"name": "bad_nets", "sources": ["file://%s" % source], "cache_dir": str(tmp_path / "cache")}
    state["lock"] = str(tmp_path / "lock")
    return state


def run(lab, **kwargs):
    return blocklist.apply(dict(lab["conf"], **kwargs.pop("conf", {})), lock_file=lab["lock"], **kwargs)


def test_first_load_then_no_change(lab):
    result = run(lab)
    # The host's own address is cut out of its /24.
    assert result["changed"] and result["entries"]["v4"] == 31 + 8 and lab["writes"] == 1
    again = run(lab)
    assert not again["changed"] and lab["writes"] == 1 and again["added"] == {"v4": 0, "v6": 0}


def test_check_mode_reads_but_never_writes(lab):
    result = run(lab, check_mode=True)
    assert result["changed"] and lab["writes"] == 0
    assert not (lab["source"].parent / "cache").exists()


@pytest.mark.parametrize("body", ["", "<html><body>Service Unavailable</body></html>", "oops\n" * 50])
def test_refused_download_falls_back_to_the_cached_copy(lab, body):
    run(lab)
    lab["source"].write_text(body)
    result = run(lab)
    assert not result["changed"] and result["sources_used"][0]["from"] == "cache"
    assert result["sources_failed"][0]["url"].startswith("file://")


def test_refused_download_without_a_cache_changes_nothing(lab):
    lab["sets"]["v4"] = ["203.0.113.0/24"]
    lab["source"].write_text("<html>502</html>")
    with pytest.raises(blocklist.BlocklistError, match="HTML page.*|no cached copy"):
        run(lab)
    assert lab["writes"] == 0


def test_half_a_list_is_refused(lab):
    run(lab)
    lab["source"].write_text("".join(LIST.splitlines(True)[:12]))
    with pytest.raises(blocklist.BlocklistError, match="would shrink from 39 to 12 entries"):
        run(lab)
    assert lab["writes"] == 1


def test_min_entries(lab):
    with pytest.raises(blocklist.BlocklistError, match="fewer than min_entries 100"):
        run(lab, conf={"min_entries": 100})


def test_offline_uses_only_the_cache(lab):
    with pytest.raises(blocklist.BlocklistError, match="offline run"):
        run(lab, offline=True)
    run(lab)
    lab["sets"] = {"v4": [], "v6": []}
    lab["source"].unlink()
    assert run(lab, offline=True)["entries"]["v4"] == 39


def test_missing_sets_fail_outside_check_mode(lab):
    lab["sets"] = {"v4": None, "v6": None}
    with pytest.raises(blocklist.BlocklistError, match="jfh_bad_nets_v4|bad_nets_v4"):
        run(lab)
    assert run(lab, check_mode=True)["changed"]


def test_absent_empties_the_sets(lab):
    run(lab)
    result = run(lab, conf={"state": "absent", "sources": []})
    assert result["changed"] and lab["sets"] == {"v4": [], "v6": []}


@pytest.mark.parametrize("conf, message", [
    ({"name": "Bad-Name"}, "'Bad-Name'"),
    ({"backend": "iptables"}, "'iptables'"),
    ({"sources": ["ftp://lab/list"]}, "'ftp://lab/list'"),
    ({"sources": []}, "no sources"),
    ({"exclude": ["192.0.2.300"]}, "'192.0.2.300'"),
    ({"exclude_defaults": ["lan"]}, "'lan'"),
    ({"max_change_ratio": 1.5}, "1.5"),
    ({"min_entries": 0}, "min_entries 0"),
])
def test_bad_settings_are_named_before_anything_runs(lab, conf, message):
    with pytest.raises(blocklist.BlocklistError, match=message):
        run(lab, conf=conf)
    assert lab["writes"] == 0


def test_diff_lists_removed_and_added_entries_capped(lab):
    run(lab)
    lab["source"].write_text(LIST + "".join("203.0.%d.0/24\n" % i for i in range(0, 240, 2)))
    result = run(lab, want_diff=True, check_mode=True)
    assert result["added"]["v4"] == 120 and result["removed"]["v4"] == 0
    after = result["diff"]["after"].splitlines()
    assert after[0] == "# bad_nets_v4: 159 entries"
    assert len([line for line in after if not line.startswith("#")]) == 100 and "# ... and 20 more" in after
    assert "diff" not in run(lab, check_mode=True)
