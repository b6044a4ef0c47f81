#!/usr/bin/env python3
"""The forwarding load test's figures from the receiver's record
(forward-receiver's CSV: arrival_ns,webhook_id,recorded_ns) and the phases
forwarding.sh timed (PHASES: one line per phase, `label t0_ns t1_ns
recorded recorded_late`, `recorded` the replies the database put into inboxes
in [t0, t1), `recorded_late` those of its second half).

For each phase: the forwarding rate (requests arriving at the receiver in
[t0, t1), and in its second half, against the replies recorded in the same
spans), and the lag from recorded to delivered of the replies recorded in
[t0, t1): p50, p90, p99, max, each reply's first arrival. Then the whole
record: requests, distinct webhook ids, repeats."""
import csv
import sys


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


def main() -> None:
    record, phases = sys.argv[1], sys.argv[2]
    first = {}
    arrivals = []
    total = 0
    with open(record) as f:
        for row in csv.DictReader(f):
            total += 1
            arrival, recorded = int(row["arrival_ns"]), int(row["recorded_ns"])
            arrivals.append(arrival)
            wid = row["webhook_id"]
            if wid not in first or arrival < first[wid][0]:
                first[wid] = (arrival, recorded)
    arrivals.sort()
    import bisect

    def arrived(a, b):
        return bisect.bisect_left(arrivals, b) - bisect.bisect_left(arrivals, a)

    for line in open(phases):
        parts = line.split()
        if not parts:
            continue
        label, t0, t1 = parts[0], int(parts[1]), int(parts[2])
        recorded, recorded_late = int(parts[3]), int(parts[4])
        span = (t1 - t0) / 1e9
        mid = (t0 + t1) // 2
        for name, a, b, rec in (("whole", t0, t1, recorded), ("2nd half", mid, t1, recorded_late)):
            s = (b - a) / 1e9
            delivered = arrived(a, b)
            ratio = delivered / rec if rec else float("nan")
            print(f"{label} {name}: {s:.1f} s; recorded {rec} ({rec / s:.0f}/s); "
                  f"forwarded {delivered} ({delivered / s:.0f}/s): {ratio:.3f} of recorded")
        lags = sorted((a - r) / 1e6 for a, r in first.values() if t0 <= r < t1)
        if lags:
            print(f"{label}: lag recorded -> delivered of {len(lags)} replies recorded in the window: "
                  f"p50 {pct(lags, 50):.1f} ms, p90 {pct(lags, 90):.1f} ms, p99 {pct(lags, 99):.1f} ms, "
                  f"max {lags[-1]:.1f} ms")
    print(f"record: {total} requests, {len(first)} distinct webhook ids, {total - len(first)} repeats")


if __name__ == "__main__":
    main()
