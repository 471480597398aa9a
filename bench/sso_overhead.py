# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time one request through each path of the SSO setup, on the Jellyfin host itself (keep-alive, one at a time).

    bench/sso_overhead.sh [--requests 400] [--runs 3]     (from the host: runs this in the sso lab's containers)
    python3 sso_overhead.py --cookie NAME=VALUE [--requests N] [--runs N]   (inside sso-nginx or sso-upstream)

Paths, each a median over --runs of the mean time per request:
  direct      GET /System/Info/Public from Jellyfin (the stand-in) on 127.0.0.1:8096, no proxy: the naive baseline
  api         the same through nginx over TLS (an app's request: no SSO on this path in web_only)
  web         GET /web/ through nginx with a session cookie (auth_request: one subrequest to oauth2-proxy per request;
              upstream mode: oauth2-proxy proxies the request itself)
The ratios are against direct, measured in the same run.
"""

import argparse
import http.client
import json
import ssl
import statistics
import time


def mean_time(connect, path, headers, requests):
    conn = connect()
    try:
        start = time.perf_counter()
        for _request in range(requests):
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit("%s answered %d" % (path, resp.status))
        return (time.perf_counter() - start) / requests
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cookie", required=True, help="the session cookie, NAME=VALUE")
    parser.add_argument("--host", required=True, help="the server name nginx answers to")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    context = ssl._create_unverified_context()  # the lab's self-signed certificate

    def plain():
        return http.client.HTTPConnection("127.0.0.1", 8096, timeout=5)

    def tls():
        return http.client.HTTPSConnection("127.0.0.1", 443, timeout=5, context=context)

    host = {"Host": args.host}
    paths = {
        "direct": (plain, "/System/Info/Public", {}),
        "api": (tls, "/System/Info/Public", host),
        "web": (tls, "/web/", dict(host, Cookie=args.cookie)),
    }
    times = {name: [] for name in paths}
    for _run in range(args.runs):
        for name, (connect, path, headers) in paths.items():
            times[name].append(mean_time(connect, path, headers, args.requests))
    result = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(json.dumps({"ms_per_request": {k: round(v, 3) for k, v in result.items()},
                      "ratio_to_direct": {k: round(v / result["direct"], 2) for k, v in result.items()},
                      "requests": args.requests, "runs": args.runs}))


if __name__ == "__main__":
    main()
