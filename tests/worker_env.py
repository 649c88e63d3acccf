"""Give each pytest-xdist worker its own Redis database and data directory.

Loaded with `-p tests.worker_env` before Django's settings, so every worker's
gateway, counters and SQLite files stay apart. The PostgreSQL test database is
already suffixed per worker by pytest-django.
"""

import os

worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if worker.startswith("gw"):
    number = int(worker[2:])
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        base, _, db = redis_url.rpartition("/")
        os.environ["REDIS_URL"] = f"{base}/{(int(db or 0) - number) % 16}"
    data_dir = os.environ.get("NEXUS_DATA_DIR")
    if data_dir:
        os.environ["NEXUS_DATA_DIR"] = os.path.join(data_dir, worker)
