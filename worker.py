"""Runs an RQ worker for Conveyor's queue with the app's config (python worker.py [--burst])."""

from __future__ import annotations

import argparse
import logging

from rq import Worker

from webapp import create_app
from webapp.engine import queueing
from webapp.engine.runner import warm_up


def main() -> None:
    """Build the app, then work the run queue until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: host and pid)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    app = create_app({"MIGRATIONS": False})  # a worker never changes the schema
    with app.app_context():
        warm_up()
        worker = Worker([queueing.run_queue()], connection=queueing.redis_connection(),
                        name=args.name)
        worker.work(burst=args.burst, with_scheduler=False)


if __name__ == "__main__":
    main()
