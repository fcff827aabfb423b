"""The worker command the plugin starts: `celery ... worker`, with two waits shortened.

kombu's Redis transport waits in BRPOP on the queues it had when the wait began, for up to
`polling_interval` seconds (1 s by default), before it sees a queue added by `add_consumer`.
So a test that points a worker at a new queue waited half a second on average for nothing.
The option is merged into the app's own `broker_transport_options` when the worker starts,
so what the learner's settings() set there (say, `visibility_timeout`) still holds.

The prefork pool notices that one of its processes died when that process's sentinel pipe
closes; but the pipe closes as the process exits, often just before the kernel has made it a
zombie that `waitpid` reports, and then the pool forgets the event and finds the dead process
only at its next routine check, every 5 s. A task whose pool process was killed waited up to 5 s
before it was put back (task_reject_on_worker_lost) or failed (WorkerLostError); the check now
runs every POOL_CHECK_SECONDS.

Run as `python -m plugins.celery_worker_main -A module worker ...` (celery's own arguments).
"""

from __future__ import annotations

from typing import Any

from celery import signals
from celery.bin.celery import main
from celery.concurrency.asynpool import AsynPool

# Seconds a worker's BRPOP waits before it re-reads its queue list: 10 round trips a second
# to a local Redis when idle, nothing worth measuring.
POLLING_INTERVAL = 0.1
# Seconds between the pool's checks for dead processes: a few waitpid(WNOHANG) calls each.
POOL_CHECK_SECONDS = 0.1


def _pool_timers(pool: AsynPool) -> dict[Any, float]:
    return {pool.maintain_pool: POOL_CHECK_SECONDS}


AsynPool.timers = property(_pool_timers)


@signals.worker_init.connect  # type: ignore[untyped-decorator]
def _poll_queues_often(sender: Any = None, **_: Any) -> None:
    conf = sender.app.conf
    options = dict(conf.broker_transport_options or {})
    options.setdefault("polling_interval", POLLING_INTERVAL)
    conf.broker_transport_options = options


if __name__ == "__main__":
    main()
