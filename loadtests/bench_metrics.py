"""What observability costs per request: metric updates, the ASGI wrapper, the access log line.

    uv run python loadtests/bench_metrics.py            # single-process mode
    uv run python loadtests/bench_metrics.py --multiprocess

Prints µs per operation (best of 5 rounds, one core):

* a metric update through router.observability.metrics' fast children vs prometheus-client
  called directly (what every update would cost without them: a lock each, plus an mmap write in
  multiprocess mode — ``leadrouter serve`` always runs in multiprocess mode);
* the flush that moves accumulated updates into prometheus-client (once a second per worker);
* the ObservabilityMiddleware around a do-nothing ASGI app, without and with the JSON access log
  line (written to /dev/null), against the bare app;
* the updates one routed lead makes (counted from the code: 15), at the measured unit costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UPDATES_PER_LEAD = 15  # see router/services/leads.py, router/observability/instrument.py,
#                        router/observability/middleware.py


def best(stmt: object, number: int, rounds: int = 5) -> float:
    """µs per call, best of ``rounds``."""
    return min(timeit.repeat(stmt, number=number, repeat=rounds)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--multiprocess", action="store_true",
                    help="run prometheus-client in multiprocess mode, as `leadrouter serve` does")
    ap.add_argument("-n", type=int, default=200_000)
    args = ap.parse_args()
    if args.multiprocess:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lr-metrics-")

    import prometheus_client

    from router.observability import logs, metrics
    from router.observability.middleware import ObservabilityMiddleware

    n = args.n
    mode = "multiprocess" if args.multiprocess else "single-process"
    print(f"prometheus-client in {mode} mode, Python {sys.version.split()[0]}, "
          "µs per operation (best of 5)")

    reg = prometheus_client.CollectorRegistry()
    raw_counter = prometheus_client.Counter("bench_raw", "x", ["a", "b"], registry=reg)
    raw_hist = prometheus_client.Histogram("bench_raw_seconds", "x", ["op"], registry=reg,
                                           buckets=metrics.FAST_LATENCY)
    raw_child = raw_counter.labels("p", "q")
    raw_hchild = raw_hist.labels("commit")
    fast_child = metrics.HTTP_REQUESTS.labels("POST", "/v1/leads", "201")
    fast_hchild = metrics.REDIS_DURATION.labels("commit")
    baseline = best(lambda: None, n)

    rows = [
        ("prometheus-client counter child .inc()", best(raw_child.inc, n)),
        ("prometheus-client .labels(...).inc()",
         best(lambda: raw_counter.labels("p", "q").inc(), n)),
        ("prometheus-client histogram child .observe()",
         best(lambda: raw_hchild.observe(0.0003), n)),
        ("fast counter child .inc()", best(fast_child.inc, n)),
        ("fast .labels(...).inc()  (dict lookup)",
         best(lambda: metrics.HTTP_REQUESTS.labels("POST", "/v1/leads", "201").inc(), n)),
        ("fast histogram child .observe()", best(lambda: fast_hchild.observe(0.0003), n)),
    ]
    print(f"  {'(empty call, subtracted below)':50s} {baseline:6.3f}")
    for name, us in rows:
        print(f"  {name:50s} {us - baseline:6.3f}")
    flush_us = best(metrics.flush, 2000)
    print(f"  {'flush() with nothing pending':50s} {flush_us:6.3f}")

    # -- the ASGI wrapper ----------------------------------------------------------------------
    async def bare(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    async def sink(message: object) -> None:
        return None

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/leads",
             "path_template": "/v1/leads", "headers": [(b"content-type", b"application/json")]}
    quiet = ObservabilityMiddleware(bare, access=False)
    logged = ObservabilityMiddleware(bare, access=True)
    # As in the service (configure_logging), with the lines going to /dev/null.
    logs.configure_logging("info")
    logs._access_stream = open(os.devnull, "w")  # noqa: SIM115

    async def run(app: object, k: int) -> None:
        for _ in range(k):
            await app(dict(scope), receive, sink)  # type: ignore[operator]

    def timed(app: object, k: int = 20_000) -> float:
        times = []
        for _ in range(5):
            loop = asyncio.new_event_loop()
            t = timeit.default_timer()
            loop.run_until_complete(run(app, k))
            times.append((timeit.default_timer() - t) / k * 1e6)
            loop.close()
        return min(times)

    bare_us = timed(bare)
    print(f"  {'bare ASGI app (reference)':50s} {bare_us:6.3f}")
    print(f"  {'+ middleware: request id, 2 metric updates':50s} {timed(quiet) - bare_us:6.3f}")
    print(f"  {'+ middleware and the JSON access log line':50s} {timed(logged) - bare_us:6.3f}")
    per_update = rows[4][1] - baseline
    print(f"per routed lead: {UPDATES_PER_LEAD} updates x {per_update:.2f} µs = "
          f"{UPDATES_PER_LEAD * per_update:.1f} µs of metrics (prometheus-client directly: "
          f"{UPDATES_PER_LEAD * (rows[1][1] - baseline):.1f} µs)")


if __name__ == "__main__":
    main()
