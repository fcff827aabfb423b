"""The worker command the plugin starts: `celery ... worker`, with one transport option added.

kombu's Redis transport waits in BRPOP on the queues it had when the wait began, for up to
`polling_interval` seconds (1 s by default), before it sees a queue added by `add_consumer`.
So a test that points a worker at a new queue waited half a second on average for nothing.
The option is merged into the app's own `broker_transport_options` when the worker starts,
so what the learner's settings() set there (say, `visibility_timeout`) still holds.

Run as `python -m plugins.celery_worker_main -A module worker ...` (celery's own arguments).
"""

from __future__ import annotations

from typing import Any

from celery import signals
from celery.bin.celery import main

# Seconds a worker's BRPOP waits before it re-reads its queue list: 10 round trips a second
# to a local Redis when idle, nothing worth measuring.
POLLING_INTERVAL = 0.1


@signals.worker_init.connect  # type: ignore[untyped-decorator]
def _poll_queues_often(sender: Any = None, **_: Any) -> None:
    conf = sender.app.conf
    options = dict(conf.broker_transport_options or {})
    options.setdefault("polling_interval", POLLING_INTERVAL)
    conf.broker_transport_options = options


if __name__ == "__main__":
    main()
