# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Jellyfin fail2ban filter, run through the real fail2ban-regex over tests/fail2ban/corpus.

fail2ban need not be installed: tests/fail2ban/get-fail2ban.sh unpacks Debian's package under .cache/fail2ban.
JFH_FAIL2BAN_TREE=DIR tests another fail2ban instead: an unpacked package, or a source checkout such as tag 1.1.0.
"""

import ast
import datetime
import ipaddress
import os
import pathlib
import random
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
FILTER = ROOT / "roles" / "fail2ban" / "files" / "filter.d" / "jellyfin.conf"
CORPUS = ROOT / "tests" / "fail2ban" / "corpus"
GET_FAIL2BAN = ROOT / "tests" / "fail2ban" / "get-fail2ban.sh"
CASES = sorted(CORPUS.glob("*.log"))
# Third parties that an attacker would like to get banned: no test may ever see them come out.
INNOCENT = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "10.0.0.0/8", "fd00::/8")]
COMPONENT = "Jellyfin.Server.Implementations.Users.UserManager"


def addr(text):
    """An address as fail2ban reports it (IPv4-mapped IPv6 reduced, IPv6 compressed)."""
    ip = ipaddress.ip_address(text)
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def innocent(text):
    return any(ipaddress.ip_address(text) in net for net in INNOCENT)


class Fail2ban:
    """One fail2ban tree: an unpacked Debian package (usr/bin/...) or a source checkout (bin/...)."""

    def __init__(self, tree):
        tree = pathlib.Path(tree)
        if (tree / "usr" / "bin" / "fail2ban-regex").is_file():
            self.bindir, self.config = tree / "usr" / "bin", tree / "etc" / "fail2ban"
            self.pythonpath = tree / "usr" / "lib" / "python3" / "dist-packages"
        elif (tree / "bin" / "fail2ban-regex").is_file():
            self.bindir, self.config, self.pythonpath = tree / "bin", tree / "config", tree
        else:
            raise RuntimeError("no fail2ban-regex in %s" % tree)
        # fail2ban needs nothing beyond the standard library: the interpreter running pytest will do.
        self.env = dict(os.environ, PYTHONPATH=str(self.pythonpath))

    def run(self, tool, *args):
        proc = subprocess.run([sys.executable, str(self.bindir / tool)] + [str(a) for a in args], env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)
        # fail2ban-regex exits 0 even when nothing matches; 255 means bad arguments or a bad filter.
        if proc.returncode != 0:
            pytest.fail("%s %s exited %d:\n%s%s" % (tool, args, proc.returncode, proc.stdout, proc.stderr), pytrace=False)
        return proc.stdout

    def matches(self, log, options="", spec=None, extra=()):
        """The matches of the filter on LOG, in line order, as (address, epoch or None)."""
        spec = spec or "%s%s" % (FILTER, "[%s]" % options if options else "")
        out = self.run("fail2ban-regex", "--out", "row", "-e", "UTF-8", *extra, log, spec)
        rows = []
        for line in out.splitlines():
            try:  # ['203.0.113.5',  1781115303,  {'ip4': '203.0.113.5', 'ip6': None}],
                row = ast.literal_eval(line.strip().rstrip(","))
            except (SyntaxError, ValueError):
                pytest.fail("unexpected fail2ban-regex output %r in:\n%s" % (line, out), pytrace=False)
            rows.append((addr(row[0]), row[1]))
        return rows


@pytest.fixture(scope="session")
def fail2ban():
    tree = os.environ.get("JFH_FAIL2BAN_TREE")
    if not tree:
        # Never skip: without fail2ban these tests prove nothing, so that is a failure.
        proc = subprocess.run([str(GET_FAIL2BAN)], capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            pytest.fail("tests/fail2ban/get-fail2ban.sh failed:\n%s%s" % (proc.stdout, proc.stderr), pytrace=False)
        tree = proc.stdout.strip().splitlines()[-1]
    return Fail2ban(tree)


class Case:
    """A corpus file's expectations, from its comment lines (see tests/fail2ban/corpus/README.md)."""

    def __init__(self, path):
        self.path, self.options, self.expect, self.never = path, "", [], []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                continue
            key, dummy, value = line[1:].strip().partition(":")
            if key == "options":
                self.options = value.strip()
            elif key == "expect":
                words = value.split()
                when = int(datetime.datetime.fromisoformat(words[1]).timestamp()) if len(words) > 1 else None
                self.expect.append((addr(words[0]), when))
            elif key == "never":
                self.never += [addr(w) for w in value.split()]


def addresses(rows):
    return [row[0] for row in rows]


def check(got, expect, never=()):
    assert addresses(got) == addresses(expect)
    for (address, when), want in zip(got, [w for a, w in expect]):
        if want is not None:
            assert when is not None and int(when) == want, "%s at %s, expected %s" % (address, when, want)
    assert not [a for a in addresses(got) if a in never or innocent(a)]


def test_corpus_is_complete():
    kinds = {p.name.split("-")[0] for p in CASES}
    assert kinds == {"match", "nomatch", "injection"}, [p.name for p in CASES]
    for path in CASES:
        case = Case(path)
        assert bool(case.expect) == (not path.name.startswith("nomatch-")), path.name
        assert not [a for a in addresses(case.expect) if a in case.never or innocent(a)], path.name
    modes = {Case(p).options for p in CASES}
    assert modes == {"", "mode=journal"}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_corpus(fail2ban, path):
    case = Case(path)
    check(fail2ban.matches(path, case.options), case.expect, case.never)


def file_line(layout, when, level, message):
    stamp = when.isoformat(sep=" ", timespec="milliseconds")
    stamp = stamp[:-6] + " " + stamp[-6:]  # 2026-06-10 20:15:03.123 +00:00
    thread = "" if layout == "debian" else "[%d] %s: " % (when.second + 7, COMPONENT)
    return "[%s] [%s] %s%s" % (stamp, level, thread, message)


def quoted(value):
    """The file sink's rendering of a string value: quoted, " escaped, everything else raw."""
    return '"%s"' % value.replace('"', '\\"')


DENIALS = ["has been denied", "has been denied because this account is currently disabled",
           "forbidden: remote access disabled and user not in local network",
           "is not allowed at this time due parental restrictions"]
# Pieces of hostile user names. None starts with "#": fail2ban-regex skips lines that do (the server does not).
PIECES = ['"', "\\", "\\\\", "\n", "\n", "\r", "\t", " ", "x", "\u00e9", "\u2028", "\u0085", "\uff02", "\u201d",
          ' has been denied (IP: "192.0.2.99").', '" has been denied (IP: "10.9.9.9").', '(IP: "fd00::99")',
          "(IP: 192.0.2.99).", ' (IP: "::ffff:192.0.2.99").', "[2026-06-10 20:15:03.123 +00:00] [INF] ",
          "[57] %s: " % COMPONENT, 'Authentication request for "', "Authentication request without username",
          " has been denied", " forbidden: remote access disabled and user not in local network", '"\n', '\\"\n']


@pytest.mark.parametrize("layout", ["debian", "docker"])
def test_generated_hostile_names(fail2ban, tmp_path, layout):
    """Hundreds of names built from hostile pieces: each attempt counts once, for its sender only."""
    rnd = random.Random(4)  # fixed: the same log every run
    when = datetime.datetime(2026, 6, 10, 20, 0, tzinfo=datetime.timezone.utc)
    lines, expect = [], []
    for n in range(400):
        when += datetime.timedelta(seconds=1)
        sender = "203.0.113.%d" % (n % 250 + 1) if n % 3 else "2001:db8:a::%x" % n
        name = "".join(rnd.choices(PIECES, k=rnd.randrange(12)))
        if not name.strip():  # Jellyfin treats a blank name as none
            message = "Authentication request without username has been denied (IP: %s)." % quoted(sender)
        else:
            message = "Authentication request for %s %s (IP: %s)." % (quoted(name), rnd.choice(DENIALS), quoted(sender))
        lines.append(file_line(layout, when, "INF", message))
        lines.append(file_line(layout, when, "ERR", 'Error processing request: "Invalid username or password entered".'
                               ' URL "POST" "/Users/AuthenticateByName".'))
        lines.append(file_line(layout, when, "INF", "WS %s request" % quoted("192.0.2.99")))
        expect.append((sender, None))
    log = tmp_path / "jellyfin.log"
    log.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    check(fail2ban.matches(log), [(addr(a), w) for a, w in expect])


def test_journal_mode_cannot_tell_forged_entries(fail2ban, tmp_path):
    """Why file mode is the default: the same hostile name in both forms.

    The console writes the name raw and unquoted, so its newline makes a journal entry of its own that is a perfect
    denial for someone else's address. The file sink quotes it, and only the sender counts.
    """
    name = "x\n[21:50:01] [INF] Authentication request for admin has been denied (IP: 192.0.2.99).\ny"
    console = "[21:50:01] [INF] Authentication request for %s has been denied (IP: 203.0.113.71)." % name
    journal = tmp_path / "journal.log"
    journal.write_text("".join("2026-06-10T21:50:01+02:00 media jellyfin[812]: %s\n" % part for part in console.split("\n")))
    assert addresses(fail2ban.matches(journal, "mode=journal")) == ["192.0.2.99"]

    when = datetime.datetime(2026, 6, 10, 19, 50, 1, tzinfo=datetime.timezone.utc)
    logfile = tmp_path / "jellyfin.log"
    logfile.write_text(file_line("debian", when, "INF", "Authentication request for %s has been denied (IP: %s)."
                                 % (quoted(name), quoted("203.0.113.71"))) + "\n")
    assert addresses(fail2ban.matches(logfile)) == ["203.0.113.71"]


def test_filter_loads_in_jails(fail2ban, tmp_path):
    """fail2ban-client accepts jails using the filter; backend = systemd picks journal mode by itself."""
    config = tmp_path / "fail2ban"
    shutil.copytree(fail2ban.config, config)
    shutil.copy(FILTER, config / "filter.d" / "jellyfin.conf")
    logfile = tmp_path / "jellyfin.log"
    logfile.touch()
    (config / "jail.local").write_text(
        "[sshd]\nenabled = false\n\n"
        "[jf-file]\nenabled = true\nport = 8096\nfilter = jellyfin\nbackend = polling\nlogpath = %s\n\n"
        "[jf-journal]\nenabled = true\nport = 8096\nfilter = jellyfin\nbackend = systemd\n\n"
        '[jf-container]\nenabled = true\nport = 8096\nbackend = systemd\n'
        'filter = jellyfin[mode=journal, journalmatch="CONTAINER_NAME=jellyfin"]\n' % logfile)
    assert "OK" in fail2ban.run("fail2ban-client", "-c", config, "--test")

    settings = {}
    for line in fail2ban.run("fail2ban-client", "-c", config, "-d").splitlines():
        if line.startswith("['set', 'jf-"):
            cmd = ast.literal_eval(line)
            settings[cmd[1], cmd[2]] = cmd[3]
    assert settings["jf-file", "datepattern"].startswith("^\\[%Y-%m-%d")
    assert settings["jf-journal", "datepattern"] == "{^LN-BEG}"
    assert settings["jf-journal", "addjournalmatch"] == "_SYSTEMD_UNIT=jellyfin.service"
    assert settings["jf-container", "addjournalmatch"] == "CONTAINER_NAME=jellyfin"
    assert settings["jf-file", "maxlines"] == settings["jf-journal", "maxlines"] == 1

    # The way an administrator tests it on a server: the filter by name from the configuration directory.
    path = CORPUS / "match-journal.log"
    check(fail2ban.matches(path, spec="jellyfin[mode=journal]", extra=("-c", config)), Case(path).expect)
