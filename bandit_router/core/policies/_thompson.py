"""Thompson sampling over VW's regressor, with a posterior per task cluster and model.

Why. SquareCB explores by one global scale (``gamma``): the same for a workload whose models
differ by 0.3 and for one whose specialists beat the best generalist by 0.03, and the same
in a kind of task seen a thousand times and in one seen twice. Replays on differently shaped
workloads showed that no one scale serves them all (``bandit-router bench quality``).
Thompson sampling explores each model in each kind of task by how likely it is to be the
best there, given what has been seen of it *there*.

The posterior of a model's quality in a request (the part of the reward the policy learns:
the reward less its pinned cost and latency terms) is built up a hierarchy:

1. the prior is the action's own estimate (the router's: its neighbours' mean quality,
   shrunk to the model's overall mean and the catalog's prior), weighed as the outcomes
   behind it (``evidence``): a model never tried near this task is as uncertain as one or two
   outcomes, however often it was tried elsewhere, until the clusters show how much a model's
   quality elsewhere tells of it here (the first level's strength, below), which it is then
   worth at least;
2. each of the context's cluster features (coarse codebook, then fine) pools the model's
   outcomes in that cluster, starting from the mean above it weighed as at most the level's
   strength in outcomes. The strength is estimated from the cells themselves (empirical
   Bayes): workloads whose kinds of task differ a lot learn each cluster on its own, those
   whose models differ by a few points per cluster pool them;
3. the spread is ``scale * sqrt(v / precision)``, ``v`` the variance of the model's own
   outcomes (0/1 grades vary more than graded ones), the precision counted in outcomes.

VW's prediction then moves the mean towards it by a weight learned from outcomes (see
:class:`Stacker`): VW sees the whole task (its embedding, features, clusters and the
neighbours' estimate) and can be finer than any cluster, or noisier. Each model's reward is
drawn from its posterior (the quality clipped to ``[low, high]``, so an expensive model that
could not pay for itself even with a perfect answer is never tried), the best draw wins, and
the probability of each model is estimated from ``draws`` such draws, seeded by the
decision's key: the probability logged is the one the model was sampled with.

Outcomes are discounted (each cell keeps an exponentially weighted sum over about its last
``memory`` outcomes), and each cluster cell also keeps its latest ``recent`` (20): when those
differ from the whole by more than ``alarm`` (4) standard errors, the cell forgets what came
before them. A model whose quality drops at a kind of task is found out in tens of its own
outcomes there, not after the hundreds it did well before.

>>> post = ClusterPosterior(prior_strength=2.0, memory=1000)
>>> for _ in range(50):
...     post.update([("m", "good"), ("k1", "m", "good")], 1.0)
...     post.update([("m", "bad"), ("k1", "m", "bad")], 0.0)
>>> mean, precision, variance = post.estimate(0.5, [("m", "good"), ("k1", "m", "good")])
>>> round(mean, 2), round(precision, 1), round(variance, 3)
(0.99, 49.5, 0.01)
>>> pmf = thompson_pmf([0.9, 0.1], [0.05, 0.05], normals=np.zeros((8, 2)) + 1.0)
>>> pmf
[1.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ClusterPosterior", "NormalTable", "Stacker", "thompson_pmf"]

#: A cell of the posterior: a tuple of names (the level's features, then the model's).
Cell = tuple[str, ...]


class ClusterPosterior:
    """Discounted outcome statistics per cell, and the hierarchical estimate they give (see
    the module docstring).

    How far a cluster may stray from the level above it is not fixed: every ``refit_every``
    outcomes it is estimated from the cells themselves (empirical Bayes: the spread of the
    cells' means around their parents' beyond what their own noise explains), so that
    workloads whose kinds of task differ a lot (templated traffic) learn each cluster on its
    own, and workloads whose models differ by a few points per cluster (benchmarks of
    similar models) pool them. ``prior_strength`` holds until two cells of a level have
    outcomes.
    """

    def __init__(self, *, prior_strength: float, memory: float,
                 refit_every: int = 100, recent: float = 20.0, alarm: float = 4.0) -> None:
        if prior_strength <= 0 or memory < 1 or recent < 1:
            raise ValueError("prior_strength must be > 0, memory and recent >= 1")
        recent = min(recent, memory)
        self.prior_strength = prior_strength
        self.memory = memory
        self.refit_every = refit_every
        self.recent, self.alarm = recent, alarm
        self._keep = 1.0 - 1.0 / memory
        self._keep_recent = 1.0 - 1.0 / recent
        #: cell -> [discounted sum of outcomes, of their squares, discounted count], then the
        #: same over about its latest ``recent`` outcomes (the change detector's window)
        self.cells: dict[Cell, list[float]] = {}
        #: cell -> the cell one level above it (the same model at the coarser level)
        self.parents: dict[Cell, Cell] = {}
        self.depths: dict[Cell, int] = {}
        #: how many outcomes a cell's parent mean weighs as, per depth (1, 2, ...)
        self.strengths: dict[int, float] = {}
        #: model-level cell -> its outcomes in first-level cells (as of the last refit)
        self.clustered: dict[Cell, float] = {}
        self._since_refit = 0

    def update(self, cells: Sequence[Cell], value: float) -> None:
        """One outcome of ``value`` seen in each of ``cells`` (coarse to fine)."""
        keep, short = self._keep, self._keep_recent
        square = value * value
        for depth, cell in enumerate(cells):
            stats = self.cells.get(cell)
            if stats is None:
                self.cells[cell] = [value, square, 1.0, value, square, 1.0]
                self.depths[cell] = depth
                if depth:
                    self.parents[cell] = cells[depth - 1]
                continue
            stats[0] = keep * stats[0] + value
            stats[1] = keep * stats[1] + square
            stats[2] = keep * stats[2] + 1.0
            stats[3] = short * stats[3] + value
            stats[4] = short * stats[4] + square
            stats[5] = short * stats[5] + 1.0
            if depth and stats[5] >= self.recent / 2 and stats[2] >= 2 * stats[5]:
                self._detect(stats)
        self._since_refit += 1
        if self._since_refit >= self.refit_every:
            self.refit()

    def _detect(self, stats: list[float]) -> None:
        """A cell whose latest outcomes differ from its whole memory by more than ``alarm``
        standard errors has changed (a model got worse, or better, at this kind of task):
        it forgets what came before its window, instead of outvoting the change for about
        ``memory`` outcomes."""
        total, squares, n, r_total, r_squares, r_n = stats
        mean, recent = total / n, r_total / r_n
        variance = max(squares / n - mean * mean, 0.0) + 0.01  # (0/1 grades: at most 0.26)
        if (recent - mean) ** 2 > self.alarm ** 2 * variance * (1.0 / r_n + 1.0 / n):
            stats[0], stats[1], stats[2] = r_total, r_squares, r_n

    def refit(self) -> None:
        """Estimate each level's strength from the cells (method of moments): the noise is
        pooled over the level's cells; the spread of cell means around their parents' is
        estimated per model and averaged over the models with two cells or more, so that a
        model used everywhere does not speak for the models tried in few places."""
        self._since_refit = 0
        by_depth: dict[int, dict[Cell, list[Cell]]] = {}
        clustered: dict[Cell, float] = {}
        for cell, depth in self.depths.items():
            if depth == 1:
                clustered[self.parents[cell]] = (clustered.get(self.parents[cell], 0.0)
                                                 + self.cells[cell][2])
            if depth:
                by_depth.setdefault(depth, {}).setdefault(self._root(cell), []).append(cell)
        strengths = {}
        for depth, models in by_depth.items():
            within, dof = 0.0, 0.0
            spreads: list[tuple[float, float, int]] = []
            for cells in models.values():
                spread, weight, used = 0.0, 0.0, 0
                for cell in cells:
                    total, squares, n = self.cells[cell][:3]
                    parent = self.cells.get(self.parents.get(cell, ()))
                    if n < 1.0 or parent is None or parent[2] <= 0:
                        continue
                    mean = total / n
                    within += max(squares - total * mean, 0.0)
                    dof += max(n - 1.0, 0.0)
                    spread += n * (mean - parent[0] / parent[2]) ** 2
                    weight += n
                    used += 1
                if used >= 2:
                    spreads.append((spread, weight, used))
            if not spreads or dof <= 0:
                continue
            noise = within / dof
            between = sum(max((sp - used * noise) / w, 0.0) for sp, w, used in spreads)
            between /= len(spreads)
            strengths[depth] = (1000.0 if between <= noise / 1000.0
                                else min(max(noise / between, 1.0), 1000.0))
        self.strengths = strengths
        self.clustered = clustered

    def _root(self, cell: Cell) -> Cell:
        """The model-level cell a cell descends from."""
        while cell in self.parents:
            cell = self.parents[cell]
        return cell

    def estimate(self, prior: float, cells: Sequence[Cell], *,
                 prior_precision: float = 1.0) -> tuple[float, float, float]:
        """The posterior mean, its precision in outcomes, and the variance of one outcome of
        this model.

        ``prior`` (the action's own estimate) weighs as ``prior_precision`` outcomes. The
        first cell, the model overall, gives the outcome variance (its own, with two
        outcomes' worth of a Bernoulli's widest, 0.25) but not the mean: how a model does
        overall says little of how it does on a kind of task it was seldom tried on (the
        prior already holds it, weighed by what is known nearby). Each further cell starts
        from the mean before it, weighed as at most its level's strength in outcomes, and
        pools its own.
        """
        mean, precision = prior, prior_precision
        variance = 0.25
        strengths = self.strengths
        if len(cells) > 1 and 1 in strengths:
            # what the clusters say a model's quality elsewhere tells of it here: no less
            # than its first level's strength, however little was seen near this task
            # that the model itself was seen in clusters stands behind (it may have been tried
            # only before the clusters existed, or in one of them)
            precision = max(precision, min(strengths[1], self.clustered.get(cells[0], 0.0)))
        for depth, cell in enumerate(cells):
            stats = self.cells.get(cell)
            if not depth:
                if stats is not None:
                    total, squares, n = stats[:3]
                    variance = (max(squares - total * total / n, 0.0) + 0.5) / (n + 1.0)
                continue
            strength = strengths.get(depth, self.prior_strength)
            precision = 1.0 / (1.0 / precision + 1.0 / strength)
            if stats is not None:
                total, n = stats[0], stats[2]
                mean = (precision * mean + total) / (precision + n)
                precision += n
        return mean, precision, variance

    def to_state(self) -> list[list[Any]]:
        return [[list(cell), list(self.parents[cell]) if cell in self.parents else None,
                 self.depths[cell], *(round(v, 9) for v in stats)]
                for cell, stats in self.cells.items()]

    @classmethod
    def from_state(cls, state: Any, *, prior_strength: float,
                   memory: float) -> ClusterPosterior:
        """Cells written by :meth:`to_state`; ValueError unless each is a named cell with
        its parent, depth, sums and a non-negative count."""
        made = cls(prior_strength=prior_strength, memory=memory)

        def names(value: Any) -> bool:
            return isinstance(value, list) and all(isinstance(x, str) for x in value)

        try:
            for cell, parent, depth, *numbers in state:
                if len(numbers) == 3:  # written before the change detector: no window yet
                    numbers += [0.0, 0.0, 0.0]
                if not (len(numbers) == 6 and names(cell) and (parent is None or names(parent))
                        and type(depth) is int and depth >= 0
                        and all(isinstance(v, int | float) and math.isfinite(v)
                                for v in numbers) and numbers[2] >= 0 and numbers[5] >= 0):
                    raise ValueError("not a named cell with finite sums")
                key = tuple(cell)
                made.cells[key] = [float(v) for v in numbers]
                made.depths[key] = depth
                if parent is not None:
                    made.parents[key] = tuple(parent)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"damaged Thompson state: {exc}") from None
        made.refit()
        return made


class Stacker:
    """How far to trust VW's prediction over the posterior mean, learned from outcomes: the
    weight ``w`` in ``posterior + w * (vw - posterior)`` that best predicted the outcomes
    seen (discounted least squares over about ``memory`` outcomes, clipped to [0, 1]), from
    ``w = prior`` held by ``strength`` pseudo-observations of unit spread.

    Each decision's two predictions are scored on the outcome it got (progressive
    validation), so VW's contextual fit wins where the task embedding says more than the
    clusters do (templated traffic), and the cluster posterior where VW's many weights are
    still noise (few outcomes per model, small differences between models).

    >>> s = Stacker(memory=1000)
    >>> for vw, post, outcome in [(0.9, 0.5, 1.0), (0.1, 0.5, 0.0)] * 50:
    ...     s.update(outcome, vw, post)
    >>> s.weight() > 0.9
    True
    """

    def __init__(self, *, memory: float, prior: float = 0.5, strength: float = 1.0) -> None:
        self._keep = 1.0 - 1.0 / memory
        self.prior, self.strength = prior, strength
        self.sxy = 0.0
        self.sxx = 0.0

    def update(self, outcome: float, vw: float, posterior: float) -> None:
        x, y = vw - posterior, outcome - posterior
        self.sxy = self._keep * self.sxy + x * y
        self.sxx = self._keep * self.sxx + x * x

    def weight(self) -> float:
        w = (self.sxy + self.strength * self.prior) / (self.sxx + self.strength)
        return min(max(w, 0.0), 1.0)

    def to_state(self) -> list[float]:
        return [self.sxy, self.sxx]

    def load_state(self, state: Any) -> None:
        if not (isinstance(state, list) and len(state) == 2
                and all(isinstance(v, int | float) and math.isfinite(v) for v in state)
                and state[1] >= 0):
            raise ValueError("damaged Thompson state: not the stacker's two sums")
        self.sxy, self.sxx = float(state[0]), float(state[1])


def thompson_pmf(means: Sequence[float], sds: Sequence[float], *,
                 normals: npt.NDArray[np.float64], offsets: Sequence[float] | None = None,
                 low: float = -math.inf, high: float = math.inf) -> list[float]:
    """Each action's chance of the best draw, over the rows of ``normals`` (standard normal
    draws, one column per action): ``mean + sd * z`` clipped to ``[low, high]``, plus
    ``offset`` (a known part of the reward, e.g. minus the cost); ties go to the first."""
    mu = np.asarray(means, np.float64)
    samples = mu + np.asarray(sds, np.float64) * normals[:, : len(mu)]
    if low > -math.inf or high < math.inf:
        np.clip(samples, low, high, out=samples)
    if offsets is not None:
        samples += np.asarray(offsets, np.float64)
    wins = np.bincount(np.argmax(samples, axis=1), minlength=len(mu))
    draws = normals.shape[0]
    return [float(w) / draws for w in wins]


class NormalTable:
    """Standard normal draws for Thompson sampling, fixed by a seed and picked per decision
    by its key: a prime number of rows, of which a decision takes ``draws`` along an
    arithmetic progression whose start and stride come from the key's hash (distinct rows,
    a different set for every key). Drawing afresh for every decision cost more than the
    rest of the rule.

    >>> table = NormalTable(seed=0)
    >>> a, b = table.rows(12345, draws=256, width=3), table.rows(67890, draws=256, width=3)
    >>> a.shape, bool((a != b).any()), bool((table.rows(12345, draws=256, width=3) == a).all())
    ((256, 3), True, True)
    """

    ROWS = 4099  # a prime: any stride visits distinct rows

    BLOCK = 16  # columns are made in blocks, each from its own seed: the same whatever the
    # widths asked for before

    def __init__(self, *, seed: int) -> None:
        self._seed = seed
        self._table = self._block(0)

    def _block(self, k: int) -> npt.NDArray[np.float64]:
        return np.random.default_rng([self._seed, 7741, k]).standard_normal(
            (self.ROWS, self.BLOCK))

    def rows(self, digest: int, *, draws: int, width: int) -> npt.NDArray[np.float64]:
        while width > self._table.shape[1]:  # more actions than columns: widen
            self._table = np.hstack([self._table,
                                     self._block(self._table.shape[1] // self.BLOCK)])
        start = digest % self.ROWS
        stride = 1 + (digest >> 24) % (self.ROWS - 1)
        index = (start + stride * np.arange(draws)) % self.ROWS
        return self._table[index, :width]
