#!/usr/bin/env python3
"""The share of allreduce time hidden behind backward, read from XGRAD_DDP_TRACE files.

Usage: python3 bench/ddp_trace_hidden.py w9.json [w9.rank1.json ...]

For each rank's trace: every "allreduce" span (communication row: from the moment every rank has
reached the bucket to its average being in .grad) is intersected with the "backward" spans (compute
row: first gradient hook -> backward's compute done) of the same rank; hidden = the intersected time,
hidden_pct = sum(hidden) / sum(allreduce). "wait for peers" spans (a bucket waiting for a slower rank)
are reported apart, not counted as allreduce time. On the shared-memory path (DDP's default on one
node) each bucket's "copy into shared memory" span, before its wait for peers, counts as allreduce
time too. These are the same figures DDP's last_step_stats()
gives and `workloads ddp` prints as hidden_pct (there summed over the timed steps only).
"""
import json
import sys


def spans(events, name):
    return sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("ph") == "X" and e["name"] == name)


def overlap(span, others):
    a, b = span
    return sum(max(0.0, min(b, d) - max(a, c)) for c, d in others)


def main(paths):
    if not paths:
        print(__doc__)
        return 2
    for path in paths:
        with open(path) as f:
            events = json.load(f)["traceEvents"]
        backward = spans(events, "backward")
        allreduce = sorted(spans(events, "allreduce") + spans(events, "copy into shared memory"))
        peers = spans(events, "wait for peers")
        total = sum(b - a for a, b in allreduce)
        hidden = sum(overlap(s, backward) for s in allreduce)
        steps = max(1, len(backward))
        print(f"{path}: steps={len(backward)} allreduce_ms_per_step={total / steps / 1e3:.3f} "
              f"hidden_ms_per_step={hidden / steps / 1e3:.3f} "
              f"hidden_pct={100.0 * hidden / total if total else 0.0:.1f} "
              f"peer_wait_ms_per_step={sum(b - a for a, b in peers) / steps / 1e3:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
