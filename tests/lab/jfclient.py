"""A Jellyfin API client for lab containers: logs in, calls the API, prints one JSON result per request.

Used by the tests to act as an app, a friend or an attacker from another container.
Bounded: --count is capped and every request has a timeout.
"""

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request

MAX_REQUESTS = 200
CLIENT_HEADER = 'MediaBrowser Client="jfh-lab", Device="lab", DeviceId="{device}", Version="1.0"'


def request(url, data=None, headers=None, timeout=5.0, context=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return {"status": resp.status, "body": resp.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as err:
        return {"status": err.code, "body": err.read().decode("utf-8", "replace")}
    except (urllib.error.URLError, OSError) as err:
        return {"status": None, "error": str(getattr(err, "reason", err))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("login", "get"))
    parser.add_argument("base_url", help="for example http://jellyfin:8096")
    parser.add_argument("--user", default="")
    parser.add_argument("--user-json", help="the user name as a JSON string (for names with newlines or quotes)")
    parser.add_argument("--password", default="")
    parser.add_argument("--path", default="/System/Info/Public")
    parser.add_argument("--token")
    parser.add_argument("--forwarded-for", help="X-Forwarded-For header to send")
    parser.add_argument("--device", default="lab-device")
    parser.add_argument("--count", type=int, default=1, help="number of requests (at most %d)" % MAX_REQUESTS)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--insecure", action="store_true", help="accept any TLS certificate (the lab's self-signed one)")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= MAX_REQUESTS:
        parser.error("--count must be between 1 and %d, got %d" % (MAX_REQUESTS, args.count))

    if args.user_json is not None:
        args.user = json.loads(args.user_json)
    headers = {"Authorization": CLIENT_HEADER.format(device=args.device)}
    context = None
    if args.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if args.token:
        headers["Authorization"] += ', Token="%s"' % args.token
    if args.forwarded_for:
        headers["X-Forwarded-For"] = args.forwarded_for
    for _request in range(args.count):
        if args.action == "login":
            body = json.dumps({"Username": args.user, "Pw": args.password}).encode()
            headers["Content-Type"] = "application/json"
            result = request(args.base_url.rstrip("/") + "/Users/AuthenticateByName", body, headers, args.timeout, context)
        else:
            result = request(args.base_url.rstrip("/") + args.path, None, headers, args.timeout, context)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
