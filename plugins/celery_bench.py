"""Benchmark: tasks per second and latency through the plugins' Redis and a real worker, one line
per Celery kata (each kata's reference app, as its tests start it).

    python -m plugins.celery_bench [--katas celery_tasks,...] [--tasks 500] [--concurrency 2]

For each kata marked `broker` in the curriculum: a fresh redis-server (plugins/redis_broker.py),
one prefork worker of the reference app (plugins/celery_workers.py), then Celery's built-in
`celery.accumulate` task (every app has it; it returns its arguments) sent through the kata's own
app: 50 one at a time (median and 95th percentile of send-to-result), then `--tasks` sent at
once and collected (tasks per second). The worker's start-up time is printed too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import statistics
import sys
import time
from pathlib import Path

from plugins import curriculum as curriculum_module
from plugins.backends import BROKER_URL_VARIABLE, redis_server_binary
from plugins.celery_workers import start_worker
from plugins.isolation import Namespace, new_run_id
from plugins.redis_broker import start_redis

ROOT = Path(__file__).resolve().parent.parent
LATENCY_SAMPLES = 50
WAIT = 30.0


def bench(kata: str, namespace: Namespace, tasks: int, concurrency: int) -> str:
    folder = ROOT / "reference" / kata
    # Other KATA_* variables a kata reads (a queue prefix, a default queue), which its tests
    # set: each gets a name of this run, as the tests would give it.
    source = (folder / f"{kata}.py").read_text(encoding="utf-8")
    for variable in re.findall(r'_VARIABLE = "(KATA_[A-Z_]+)"', source):
        if variable != BROKER_URL_VARIABLE:
            os.environ.setdefault(variable, namespace.name(variable.lower().replace("_", "-")))
    sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    module = importlib.import_module(kata)
    app = module.app
    if app.conf.broker_url != os.environ[BROKER_URL_VARIABLE]:
        return f"{kata}: skipped: its app is not configured for the bench's broker"
    queue = namespace.name("bench")
    started = time.perf_counter()
    worker = start_worker(namespace, kata, queues=[queue], concurrency=concurrency, app=app)
    boot = time.perf_counter() - started
    try:
        latencies = []
        for i in range(LATENCY_SAMPLES):
            sent = time.perf_counter()
            app.send_task("celery.accumulate", args=[i], queue=queue).get(
                timeout=WAIT, interval=0.01
            )
            latencies.append(time.perf_counter() - sent)
        started = time.perf_counter()
        results = [app.send_task("celery.accumulate", args=[i], queue=queue) for i in range(tasks)]
        values = [result.get(timeout=WAIT, interval=0.01) for result in results]
        seconds = time.perf_counter() - started
        assert values == [[i] for i in range(tasks)], "a result came back wrong"
    finally:
        worker.stop()
    latencies.sort()
    return (
        f"{kata}: {tasks / seconds:6.0f} tasks/s ({tasks} at once, {concurrency} worker "
        f"processes), latency median {statistics.median(latencies) * 1e3:.1f} ms, p95 "
        f"{latencies[int(0.95 * len(latencies))] * 1e3:.1f} ms; worker ready in {boot:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--katas", default="", help="comma-separated; default every broker kata")
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    manifest = curriculum_module.load(ROOT)
    katas = [k.name for k in manifest.katas if "broker" in k.markers]
    if args.katas:
        katas = [k for k in katas if k in args.katas.split(",")]
    binary = redis_server_binary()
    if binary is None:
        print("no redis-server here: pip install -e '.[celery]' (or apt-get install redis-server)")
        return 1
    for kata in katas:
        namespace = Namespace(new_run_id(None))
        broker = start_redis(namespace, binary)
        os.environ[BROKER_URL_VARIABLE] = broker.url
        try:
            print(bench(kata, namespace, args.tasks, args.concurrency), flush=True)
        finally:
            if broker.service is not None:
                broker.service.stop()
            namespace.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
