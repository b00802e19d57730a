"""Locust users for ``bandit-router serve``: each selects for a new prompt, then rewards it.

Run by ``benchmarks/bench_locust.py`` (which starts the server, makes an API key, and reads
Locust's CSV), or by hand against a running service:

    BANDIT_ROUTER_KEY=... locust -f benchmarks/load/locustfile.py --headless \\
        -H http://127.0.0.1:8000 -u 16 -r 16 -t 60s
"""

from __future__ import annotations

import itertools
import os

from locust import FastHttpUser, between, task

from bandit_router.eval.simulation import SyntheticWorkload

_WORKLOAD = SyntheticWorkload(seed=int(os.environ.get("BANDIT_ROUTER_LOAD_SEED", "0")))
_COUNTER = itertools.count()


class RouterUser(FastHttpUser):  # type: ignore[misc]  # (Any where locust is missing)
    """One application: select, call the model (not here), reward."""

    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {os.environ['BANDIT_ROUTER_KEY']}"}

    @task  # type: ignore[untyped-decorator]  # (untyped where locust is missing)
    def select_then_reward(self) -> None:
        prompt = f"{_WORKLOAD.sample_task().text} (#{next(_COUNTER)})"  # always a new prompt
        with self.client.post("/v1/select", json={"task": prompt}, headers=self.headers,
                              name="/v1/select", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"select: {r.status_code}")
                return
            event = r.json()["event_id"]
        self.client.post(f"/v1/events/{event}/reward", headers=self.headers,
                         json={"quality": 0.8, "cost_usd": 0.0001, "latency_s": 1},
                         name="/v1/events/{id}/reward")
