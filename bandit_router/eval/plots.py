"""Figures for replays (matplotlib, imported only when a figure is drawn; ``pip install
bandit-router[plots]``). Each function writes a PNG and returns its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core._objective import Objective
from .replay import ReplayResult, zero_router_hull

__all__ = ["cost_quality_plane", "learning_curve"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cost_quality_plane(curves: Mapping[str, Sequence[tuple[float, float]]],
                       singles: Mapping[str, tuple[float, float]], path: str | Path, *,
                       title: str = "cost-quality plane") -> Path:
    """Every single model, the zero router's hull, and each router's points (one per cost
    weight), on a log cost axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, (c, q) in singles.items():
        ax.scatter(c, q, color="grey", s=18)
        ax.annotate(name, (c, q), fontsize=6, alpha=0.7, xytext=(3, 2),
                    textcoords="offset points")
    hull = zero_router_hull([c for c, _ in singles.values()], [q for _, q in singles.values()])
    ax.plot([c for c, _ in hull], [q for _, q in hull], "--", color="black",
            label="zero router (hull)")
    for name, points in curves.items():
        pts = sorted(points)
        ax.plot([c for c, _ in pts], [q for _, q in pts], "o-", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per request (USD, log scale)")
    ax.set_ylabel("mean quality")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def learning_curve(result: ReplayResult, path: str | Path, *, window: int = 500) -> Path:
    """Rolling mean reward of the router per round, against always-strongest and the
    per-task oracle on the same tasks."""
    plt = _pyplot()
    ds, lam = result.dataset, result.cost_weight
    reward = Objective(lam).reward(ds.quality, ds.cost)
    rows = result.order
    router = reward[rows, result.chosen]
    strongest = reward[rows, int(np.argmax(ds.quality.mean(axis=0)))]
    oracle = reward[rows].max(axis=1)
    kernel = np.ones(window) / window
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, series in (("router", router), ("always strongest", strongest),
                         ("oracle", oracle)):
        if len(series) >= window:
            ax.plot(np.arange(window, len(series) + 1), np.convolve(series, kernel, "valid"),
                    label=name)
    ax.set_xlabel("round")
    ax.set_ylabel(f"reward (rolling mean of {window}), cost weight {lam:g}")
    ax.set_title(f"learning curve: {ds.name}")
    ax.legend()
    ax.grid(alpha=0.3)
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out
