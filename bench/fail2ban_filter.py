# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time fail2ban-regex with the collection's Jellyfin filter against a naive one, on a generated Jellyfin log.

    python3 bench/fail2ban_filter.py [--lines 200000] [--runs 3] [--layout debian|docker]

The log (mostly ordinary traffic, some denied logins each followed by its error line, now and then a stack trace or
a long ffmpeg command line) is written to .cache/bench/. Both filters use the same datepattern, so only the failure
regexes differ. Each run is a whole fail2ban-regex process (start-up included); the start-up alone is measured on an
empty log and reported too. fail2ban comes from tests/fail2ban/get-fail2ban.sh (or JFH_FAIL2BAN_TREE).
"""

import argparse
import datetime
import os
import pathlib
import random
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILTER = ROOT / "roles" / "fail2ban" / "files" / "filter.d" / "jellyfin.conf"
OUT = ROOT / ".cache" / "bench"
NAIVE = r"""[Definition]
failregex = ^.*Authentication request for .* has been denied \(IP: "<HOST>"\)
datepattern = ^\[%%Y-%%m-%%d %%H:%%M:%%S\.%%f %%z\]
"""
USERS = ["alice", "bob", "carol", "dave", "kids", "livingroom"]
TITLES = ["The Expanse S03E07", "Blade Runner 2049", "Planet Earth II S01E02", "Arrival", "Dark S02E05"]
# (weight, level, component, message template); {ip}, {user}, {title}, {n}, {guid} are filled in per line.
TRAFFIC = [
    (30, "INF", "Emby.Server.Implementations.HttpServer.WebSocketManager", 'WS "{ip}" request'),
    (12, "INF", "Jellyfin.Server.Implementations.Users.UserManager", 'Authentication request for "{user}" has succeeded.'),
    (12, "INF", "Emby.Server.Implementations.Session.SessionManager", 'Current/Max sessions for user "{user}": 1/0'),
    (10, "INF", "Jellyfin.Api.Helpers.MediaInfoHelper",
     'User policy for "{user}". EnablePlaybackRemuxing: True EnableVideoPlaybackTranscoding: True EnableAudioPlaybackTranscoding: True'),
    (10, "INF", "Emby.Server.Implementations.Session.SessionManager",
     'Playback stopped reported by app "Jellyfin Web" "10.11.11" playing "{title}". Stopped at "{n}" ms'),
    (8, "INF", "Emby.Server.Implementations.Session.SessionManager",
     'RemoteClientBitrateLimit: 0, RemoteIP: "{ip}", IsInLocalNetwork: False'),
    (8, "WRN", "Jellyfin.Api.Middleware.ResponseTimeMiddleware",
     'Slow HTTP Response from "https://media.example.net/Items/{guid}/Images/Primary?fillHeight=396&quality=96" to "{ip}"'
     ' in 0:00:01.{n} with Status Code 200'),
    (6, "INF", "Jellyfin.Api.Auth.CustomAuthenticationHandler",
     '"CustomAuthentication" was not authenticated. Failure message: "Invalid token"'),
    (4, "INF", "MediaBrowser.MediaEncoding.Transcoding.TranscodeManager",
     'Deleting partial stream file(s) "/var/cache/jellyfin/transcodes/{guid}.m3u8"'),
    (3, "INF", "Emby.Server.Implementations.ScheduledTasks.TaskManager",
     '"Refresh People" Completed after 0 minute(s) and {n} seconds'),
    (2, "INF", "MediaBrowser.MediaEncoding.Transcoding.TranscodeManager",
     '"/usr/lib/jellyfin-ffmpeg/ffmpeg" "-analyzeduration 200M -probesize 1G -ss 00:12:{n}.000 -noaccurate_seek'
     ' -f matroska -i file:\\"/media/movies/{title}.mkv\\" -map_metadata -1 -map_chapters -1 -threads 0 -map 0:0'
     ' -map 0:1 -map -0:s -codec:v:0 libx264 -preset veryfast -crf 23 -maxrate 7616000 -bufsize 15232000'
     ' -profile:v:0 high -level 41 -x264opts:0 subme=0:me_range=16:rc_lookahead=10:me=hex:open_gop=0'
     ' -force_key_frames:0 \\"expr:gte(t,n_forced*3)\\" -sc_threshold:v:0 0 -vf \\"setparams=color_primaries=bt709'
     ':color_trc=bt709:colorspace=bt709,scale=trunc(min(max(iw\\,ih*a)\\,1920)/2)*2:trunc(ow/a/2)*2,format=yuv420p\\"'
     ' -codec:a:0 libfdk_aac -ac 2 -ab 256000 -copyts -avoid_negative_ts disabled -max_muxing_queue_size 2048'
     ' -f hls -max_delay 5000000 -hls_time 3 -hls_segment_type mpegts -start_number 0'
     ' -hls_segment_filename \\"/var/cache/jellyfin/transcodes/{guid}%d.ts\\" -hls_playlist_type vod'
     ' -hls_list_size 0 -y \\"/var/cache/jellyfin/transcodes/{guid}.m3u8\\""'),
    (1, "ERR", "MediaBrowser.Providers.Manager.ProviderManager", 'Error in "TheMovieDb"'),
]
STACK = [
    "System.Net.Http.HttpRequestException: Resource temporarily unavailable (api.themoviedb.org:443)",
    "   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, Int32 port, HttpRequestMessage request,"
    " Boolean async, CancellationToken cancellationToken)",
    "   at MediaBrowser.Providers.Manager.ProviderManager.GetImages(BaseItem item, LibraryOptions libraryOptions)",
]


def fail2ban_tree():
    """(fail2ban-regex, PYTHONPATH) of an unpacked Debian package or of a source checkout."""
    tree = os.environ.get("JFH_FAIL2BAN_TREE") or subprocess.run(
        [str(ROOT / "tests" / "fail2ban" / "get-fail2ban.sh")], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    tree = pathlib.Path(tree)
    if (tree / "usr" / "bin" / "fail2ban-regex").is_file():
        return tree / "usr" / "bin" / "fail2ban-regex", tree / "usr" / "lib" / "python3" / "dist-packages"
    return tree / "bin" / "fail2ban-regex", tree


def generate(path, lines, layout, fail_every):
    """Write the log; return how many denied logins it holds."""
    rnd = random.Random(2026)
    weights = [t[0] for t in TRAFFIC]
    when = datetime.datetime(2026, 6, 10, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    denied = written = 0
    with path.open("w", encoding="utf-8") as log:
        def emit(level, component, message):
            stamp = when.isoformat(sep=" ", timespec="milliseconds")
            context = "[%d] %s: " % (rnd.randrange(1, 200), component) if layout == "docker" else ""
            log.write("[%s %s] [%s] %s%s\n" % (stamp[:-6], stamp[-6:], level, context, message))
            return 1

        while written < lines:
            when += datetime.timedelta(milliseconds=rnd.randrange(1, 900))
            if rnd.randrange(fail_every) == 0 and written + 2 <= lines:
                ip = "203.0.113.%d" % rnd.randrange(1, 255) if rnd.randrange(4) else "2001:db8:%x::%x" % (rnd.randrange(99), rnd.randrange(9999))
                written += emit("INF", "Jellyfin.Server.Implementations.Users.UserManager",
                                'Authentication request for "%s" has been denied (IP: "%s").' % (rnd.choice(USERS + ["admin", "root"]), ip))
                written += emit("ERR", "Jellyfin.Api.Middleware.ExceptionMiddleware", 'Error processing request: "Invalid username'
                                ' or password entered". URL "POST" "/Users/AuthenticateByName".')
                denied += 1
                continue
            dummy, level, component, template = rnd.choices(TRAFFIC, weights)[0]
            written += emit(level, component, template.format(
                ip="192.0.2.%d" % rnd.randrange(1, 255), user=rnd.choice(USERS), title=rnd.choice(TITLES),
                n=rnd.randrange(1000, 9999), guid="%032x" % rnd.getrandbits(128)))
            if level == "ERR" and written + len(STACK) <= lines:
                log.write("\n".join(STACK) + "\n")
                written += len(STACK)
    return denied


def run(fail2ban, log, filter_path):
    """One fail2ban-regex process: (seconds, number of matches)."""
    regex, pythonpath = fail2ban
    cmd = [sys.executable, str(regex), "--out", "ip", "-e", "UTF-8", str(log), str(filter_path)]
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, len(out.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--lines", type=int, default=200000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layout", choices=["debian", "docker"], default="debian")
    parser.add_argument("--fail-every", type=int, default=50, help="one denied login per this many events (default 50: 2%%)")
    args = parser.parse_args()

    fail2ban = fail2ban_tree()
    version = subprocess.run([sys.executable, str(fail2ban[0]), "-V"], env=dict(os.environ, PYTHONPATH=str(fail2ban[1])),
                             capture_output=True, text=True, check=True).stdout.strip()
    (OUT / "filter.d").mkdir(parents=True, exist_ok=True)
    naive = OUT / "filter.d" / "naive.conf"
    naive.write_text(NAIVE)
    log = OUT / ("jellyfin-%s-%d.log" % (args.layout, args.lines))
    denied = generate(log, args.lines, args.layout, args.fail_every)
    empty = OUT / "empty.log"
    empty.write_text("")

    times = {"jellyfin": [], "naive": [], "start-up": []}
    found = {}
    for dummy in range(args.runs):  # interleaved, so that drift on the machine hits both alike
        for name, path in (("jellyfin", FILTER), ("naive", naive)):
            seconds, found[name] = run(fail2ban, log, path)
            times[name].append(seconds)
        times["start-up"].append(run(fail2ban, empty, FILTER)[0])

    median = {name: statistics.median(values) for name, values in times.items()}
    print("fail2ban %s, Python %s, %d lines (%s layout), %d denied logins, median of %d runs"
          % (version, sys.version.split()[0], args.lines, args.layout, denied, args.runs))
    for name in ("jellyfin", "naive"):
        net = median[name] - median["start-up"]
        print("  %-9s %6.2f s  %7.0f lines/s  (%6.0f lines/s without start-up)  best %.2f s  matches %d  runs %s"
              % (name, median[name], args.lines / median[name], args.lines / net, min(times[name]), found[name],
                 " ".join("%.2f" % t for t in times[name])))
    print("  start-up  %6.2f s" % median["start-up"])
    print("  ratio jellyfin/naive: %.2f (whole runs), %.2f (without start-up)"
          % (median["jellyfin"] / median["naive"], (median["jellyfin"] - median["start-up"]) / (median["naive"] - median["start-up"])))
    if found["jellyfin"] != denied or found["naive"] != denied:
        print("MISMATCH: expected %d matches from both filters" % denied)
        return 1
    print("  both filters found all %d denied logins" % denied)
    return 0


if __name__ == "__main__":
    sys.exit(main())
