"""The bare download: the pages okrsync reads, fetched by a plain client that only reads
the bodies (the yardstick of the comparison benchmark).

    python3 bare_download.py SPEC.json

SPEC.json: {"kind": "jira" | "github", "urls": [first page URL, ...], "headers": {...},
"ca_file": PATH or null}. One keep-alive connection, one request at a time. Each first URL
is followed to its last page as okrsync follows it: Jira Cloud by adding the body's
`nextPageToken` to the first URL (found with a byte search, not a JSON parse), GitHub by the
`Link: <…>; rel="next"` header. Prints {"requests", "bytes", "download_s"} as JSON
(download_s: from the first request to the last body, without the interpreter's start);
exits 1 on any answer but 200.
"""

import http.client
import json
import re
import ssl
import sys
import time
import urllib.parse

NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
TOKEN = b'"nextPageToken":"'


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    context = None
    if spec.get("ca_file"):
        context = ssl.create_default_context(cafile=spec["ca_file"])
    connections = {}
    requests = 0
    received = 0

    def fetch(url: str):
        nonlocal requests, received
        parts = urllib.parse.urlsplit(url)
        where = (parts.scheme, parts.netloc)
        conn = connections.get(where)
        if conn is None:
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(parts.netloc, context=context)
            else:
                conn = http.client.HTTPConnection(parts.netloc)
            connections[where] = conn
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request("GET", target, headers=spec["headers"])
        response = conn.getresponse()
        body = response.read()
        requests += 1
        received += len(body)
        if response.status != 200:
            sys.exit(f"GET {url}: {response.status} {body[:300]!r}")
        return response, body

    started = time.perf_counter()
    for first in spec["urls"]:
        url = first
        while url:
            response, body = fetch(url)
            if spec["kind"] == "jira":
                at = body.rfind(TOKEN)
                if at < 0:
                    url = None
                else:
                    start = at + len(TOKEN)
                    token = body[start : body.index(b'"', start)].decode()
                    url = first + "&nextPageToken=" + urllib.parse.quote(token, safe="")
            else:
                match = NEXT_LINK.search(response.getheader("link") or "")
                url = match.group(1) if match else None
    elapsed = time.perf_counter() - started
    print(json.dumps({"requests": requests, "bytes": received, "download_s": elapsed}))


if __name__ == "__main__":
    main()
