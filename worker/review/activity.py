"""GET /activity: orders/s and the review queue over the last hour, for the page's chart.

Each worker samples every SAMPLE_S seconds into a ring buffer of an hour: the rate of the orders its
stages took, and the reviews waiting in the partitions it owns. A sample is stamped with its slot of
wall-clock time, so the worker asked adds every worker's samples up slot by slot: the whole pipeline's
orders/s and queue. Kept in memory: a restarted worker starts an empty hour, and a worker that is
gone takes its samples with it (the chart then shows less than there was).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from faust import web

from worker.review.listing import Listing
from worker.runtime.app import PipelineApp
from worker.runtime.auth import Handler
from worker.runtime.peers import unreachable

SAMPLE_S = 5.0
SLOTS = int(3600 / SAMPLE_S)


class Activity:
    """This worker's samples of the last hour: (slot, orders/s, reviews waiting)."""

    def __init__(self) -> None:
        self.samples: deque[tuple[int, float, int]] = deque(maxlen=SLOTS)
        self._last: tuple[float, int] | None = None

    def sample(self, now: float, orders: int, queue: int) -> None:
        """Record that `orders` had been taken in all by wall-clock time `now`, and `queue` wait."""
        last, self._last = self._last, (now, orders)
        if last is not None and now > last[0]:
            self.samples.append((int(now // SAMPLE_S), (orders - last[1]) / (now - last[0]), queue))


def merged(parts: Iterable[Iterable[Iterable[Any]]]) -> list[dict[str, Any]]:
    """Every worker's samples added up per slot, oldest first."""
    rate: dict[int, float] = defaultdict(float)
    queue: dict[int, int] = defaultdict(int)
    for samples in parts:
        for slot, per_s, waiting in samples:
            rate[slot] += per_s
            queue[slot] += waiting
    return [
        {"at": slot * SAMPLE_S, "orders_per_s": round(rate[slot], 2), "queue": queue[slot]}
        for slot in sorted(rate)
    ]


def register(
    app: PipelineApp,
    listing: Listing,
    guarded: Callable[[Handler], Handler],
    orders: Callable[[], int],
    queue: Callable[[], int],
) -> None:
    """Sample `orders()` (taken in all) and `queue()` (waiting here), and serve `/activity`."""
    activity = Activity()

    @app.timer(SAMPLE_S, name="review-activity")
    async def sample() -> None:
        activity.sample(time.time(), orders(), queue())

    @app.page("/activity", name="activity")
    class Recent(web.View):
        @guarded
        async def get(self, request: web.Request) -> web.Response:
            """Orders/s and reviews waiting, every SAMPLE_S seconds of the last hour, all workers."""
            if request.query.get("scope") == "local":
                return self.json({"samples": list(activity.samples)})
            answers = await listing.others(request, "/activity", {})
            parts = [activity.samples, *(body["samples"] for _, body in answers if body is not None)]
            return self.json(
                {"every_s": SAMPLE_S, "samples": merged(parts), "unreachable_workers": unreachable(answers)}
            )
