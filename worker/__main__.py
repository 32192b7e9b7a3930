"""`python -m worker`: run the worker (see `worker.main.run`)."""

from worker.main import run

run()
