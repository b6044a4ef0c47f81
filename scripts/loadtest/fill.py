#!/usr/bin/env python3
"""Assigns COUNT numbers (5 per client) through the admin API over one
keep-alive connection. The numbers follow the formula in webhook.lua."""
import http.client
import json
import sys

AREAS = [201, 212, 213, 312, 415, 617, 646, 718, 917, 305]


def number(i: int) -> str:
    area = AREAS[i % 10]
    exchange = 200 + (i // 10) % 800
    line = i // 8000
    return f"+1{area}{exchange}{line:04d}"


def main() -> None:
    host, port, token, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    conn = http.client.HTTPConnection(host, port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for client in range(count // 5):
        body = {"userId": f"client-{client}", "phoneNumbers": [number(client * 5 + k) for k in range(5)]}
        conn.request("POST", "/api/admin/update-phone-numbers", json.dumps(body), headers)
        response = conn.getresponse()
        text = response.read()
        if response.status != 200:
            sys.exit(f"fill failed for client-{client}: {response.status} {text!r}")
    print(f"assigned {count // 5 * 5} numbers to {count // 5} clients")


if __name__ == "__main__":
    main()
