"""The WSGI app (gunicorn app:app, flask --app app)."""

import gc

from webapp import create_app

app = create_app()
# What starting made (modules, templates, the mapped tables: ~200,000 objects) lives as long as
# the process. Frozen, a full garbage collection no longer walks it: one took 50-90 ms, a stall
# that every request queued behind it waited out.
gc.freeze()
