"""A browser-like client for lab containers: follows Jellyfin's SSO login one hop at a time.

    ssoclient login BASE_URL --email ADDRESS [--path /web/]
    ssoclient get URL [--header NAME:VALUE ...]

login opens BASE_URL+path, follows each redirect by hand, answers the lab provider's login form
(oidc-provider-mock: POST sub=ADDRESS to the authorize URL) and prints one JSON object: every hop
(url, status, location), the final status, the start of the final body and the cookies it holds
(the session, for benchmarks). get prints one hop.
TLS certificates are not checked (the lab's is self-signed). Bounded: at most 12 hops, 5 s each.
"""
import argparse
import http.cookiejar
import json
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

MAX_HOPS = 12


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def opener(jar=None):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar() if jar is None else jar),
                                       urllib.request.HTTPSHandler(context=context))


def fetch(open_url, url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with open_url.open(request, timeout=5) as resp:
            return resp.status, resp.headers.get("Location"), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Location"), err.read().decode("utf-8", "replace")


def login(base_url, path, email):
    jar = http.cookiejar.CookieJar()
    open_url = opener(jar)
    url, hops, posted = base_url.rstrip("/") + path, [], False
    for _hop in range(MAX_HOPS):
        data = None
        if not posted and urllib.parse.urlsplit(url).path.endswith("/oauth2/authorize"):
            data, posted = urllib.parse.urlencode({"sub": email}).encode(), True
        status, location, body = fetch(open_url, url, data)
        hops.append({"url": url, "method": "POST" if data else "GET", "status": status, "location": location})
        if status not in (301, 302, 303, 307, 308) or not location:
            return {"hops": hops, "status": status, "body": body[:400], "cookies": {c.name: c.value for c in jar}}
        url = urllib.parse.urljoin(url, location)
    return {"hops": hops, "status": None, "body": "too many redirects"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("login", "get"))
    parser.add_argument("url")
    parser.add_argument("--email", default="")
    parser.add_argument("--path", default="/web/")
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args(argv)
    if args.action == "login":
        result = login(args.url, args.path, args.email)
    else:
        headers = dict(h.split(":", 1) for h in args.header)
        status, location, body = fetch(opener(), args.url, headers={k.strip(): v.strip() for k, v in headers.items()})
        result = {"url": args.url, "status": status, "location": location, "body": body[:400]}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
