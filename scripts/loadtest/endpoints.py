#!/usr/bin/env python3
"""Gives each of the first CLIENTS clients of fill.py (client-0, client-1, ...)
an endpoint at BASE_URL/client-N, through the admin API over one keep-alive
connection."""
import http.client
import json
import sys


def main() -> None:
    host, port, token, clients, base = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    conn = http.client.HTTPConnection(host, port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for client in range(clients):
        body = {"url": f"{base}/client-{client}", "enabled": True}
        conn.request("PUT", f"/api/admin/clients/client-{client}/endpoint", json.dumps(body), headers)
        response = conn.getresponse()
        text = response.read()
        if response.status not in (200, 201):
            sys.exit(f"endpoint failed for client-{client}: {response.status} {text!r}")
    print(f"{clients} endpoints at {base}/client-N")


if __name__ == "__main__":
    main()
