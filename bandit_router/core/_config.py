"""Frozen, validated configuration for the policy and the router.

Both classes check every field at construction, so a bad setting fails where it is written,
not thousands of requests later.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Literal

from . import _namespaces as ns
from ._errors import InvalidInputError

__all__ = ["EXPLORATIONS", "Exploration", "PolicyConfig", "RouterConfig", "implied_exploration"]

Exploration = Literal["thompson", "squarecb", "epsilon", "softmax", "regcb"]
EXPLORATIONS: tuple[str, ...] = ("thompson", "squarecb", "epsilon", "softmax", "regcb")


#: The explorations the adapter runs itself over VW's regressor (``--cb_adf``); VW runs the
#: others (``--cb_explore_adf``).
_ADAPTER_EXPLORES = ("thompson", "squarecb")
#: VW flags that pick an exploration (or the explore reduction itself).
_EXPLORATION_FLAGS = ("--cb_explore_adf", "--cb_explore", "--squarecb", "--epsilon", "--first",
                      "--bag", "--cover", "--softmax", "--regcb", "--regcbopt", "--rnd",
                      "--synthcover", "--large_action_space")


def implied_exploration(named: Exploration | None, *, optimism: float = 0.0,
                        elimination: bool = False, baseline_strength: float = 0.0) -> Exploration:
    """The exploration a setting means: the one ``named``, else ``squarecb`` when one of
    squareCB's own options is set (as configurations written before Thompson sampling became
    the default set them), else the default.

    >>> implied_exploration(None), implied_exploration(None, optimism=0.2)
    ('thompson', 'squarecb')
    >>> implied_exploration("epsilon", optimism=0.2)
    'epsilon'
    """
    if named is not None:
        return named
    if optimism or elimination or baseline_strength:
        return "squarecb"
    return "thompson"


#: A :class:`PolicyConfig` field that changes decisions only, never what is learned or
#: saved: a checkpoint serves any value of it.
_DECIDES = {"decision_only": True}
#: A RouterConfig field that changes nothing the router decides or learns in the quality
#: protocol's replays (how long it waits for its database; a per-tenant learning limit, off
#: by default): the protocol's table stays valid across it.
OPERATIONAL = {"operational": True}
#: The largest cost or latency weight a router takes (a decision's weights too: see
#: ``_validation``, which re-exports it).
MAX_WEIGHT = 1e6


def _since(before: object) -> dict[str, object]:
    """A :class:`PolicyConfig` field added after checkpoints existed: a checkpoint written
    before it was written with ``before`` (the value that behaves as the release before)."""
    return {"before": before}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInputError(message)


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` as an ``int``; :class:`InvalidInputError` unless it is an integer in
    [0, 2**63) (NumPy's generators, which Thompson sampling and the replays draw from, take
    none below 0).

    >>> check_seed(7)
    7
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    bandit_router.core._errors.InvalidInputError: seed must be an integer in [0, 2**63), not -1
    """
    if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
            or not 0 <= int(seed) < 2**63):
        raise InvalidInputError(f"{name} must be an integer in [0, 2**63), not {seed!r}")
    return int(seed)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyConfig:
    """Settings of the Vowpal Wabbit ``cb_explore_adf`` policy.

    ``exploration`` picks how the policy explores. ``thompson`` (default) is Thompson
    sampling over VW's regressor (``--cb_adf --cb_type mtr``), run by the adapter: a posterior
    of each model's quality per task cluster, from its neighbours' estimate down the cluster
    codebooks, with VW's prediction weighed in by how well it has predicted outcomes
    (``thompson_scale`` widens or narrows the posterior's spread; ``thompson_prior`` is how
    many outcomes a cluster's parent weighs as until that is estimated from the data;
    ``thompson_memory`` is about how many of its latest outcomes a cell remembers;
    ``thompson_draws`` how many posterior draws estimate the probability logged;
    ``thompson_tries`` gives each model that could still be the best a share of 5% of a
    decision until it has had that many outcomes in the task's finest cluster, since a
    specialist looks weak on average; ``thompson_floor`` mixes that share, decaying as
    ``1/sqrt(1 + learned/100)``, over every model that could be the best with a perfect
    answer; see ``policies._thompson``). ``squarecb`` (``gamma_scale``, ``gamma_exponent``) is
    squareCB over the same regressor, also run by the adapter (below). The others are VW's:
    ``epsilon`` (``epsilon``-greedy), ``softmax`` (``softmax_lambda``) or ``regcb``
    (optimistic RegCB). RegCB bounds the
    predicted reward by ``reward_range`` (VW's ``--cb_min_cost``/``--cb_max_cost``, negated:
    VW minimises cost); the router's rewards are a quality in [0, 1] less cost and latency
    terms, so the default (-1, 1) holds them. ``exploration_floor`` mixes that share of a
    uniform choice into every distribution (after VW's exploration), so no model is ever
    dropped for good after a few unlucky outcomes; the logged probability is the mixture's.
    ``optimism`` (squareCB's) raises each action's predicted reward, when
    deciding only, by ``optimism * sqrt(ln(N + 2) / (n + 1))`` where ``n`` counts the rewards
    learned for that model (its ``M`` features) and ``N`` those of every eligible model: a
    model whose estimate fell low early keeps being re-tested, less as it is tried (see
    ``policies._squarecb``). VW runs squareCB's regressor (``--cb_adf --cb_type mtr``) and
    the adapter applies the squareCB rule itself, with or without optimism, training the
    regressor without importance weights as squareCB prescribes (VW's own ``--squarecb``,
    which this adapter no longer runs, leaves the weight on when the last action in the list
    was chosen: its loop stops one short). ``elimination`` (VW's ``--squarecb --elim``) was
    removed with it and is refused.
    ``baseline_strength`` (squareCB's) starts each model's predicted reward, when
    deciding, at its baseline (the router's: the neighbours' estimate of its quality less its
    cost and latency terms) and hands it over to VW's prediction as the model's rewards come:
    after ``n`` rewards the two weigh ``n`` to ``baseline_strength``. A model VW has seldom
    learned from is otherwise predicted from the features every model shares, and squareCB
    may stop trying it however good its neighbours say it is (see ``policies._squarecb``).
    VW's ``bag`` and ``cover`` are not offered: they keep several sub-models whose weights
    the router cannot pin (see ``VWPolicy``).
    ``interactions`` are VW's quadratic namespace pairs; the defaults cross the task embedding
    (``E``), task features (``T``) and task clusters (``K``, see
    :attr:`RouterConfig.task_clusters`) with the model identity (``M``), so every model gets
    its own quality function of the task, and the neighbours' estimate of the model's quality
    and its evidence (``Q``) with it, so every model learns how far to trust that estimate
    (the router gives ``Q`` no linear terms of its own: ``VWPolicy(crossed_only=...)``, see
    ``bandit_router.core._scoring``).

    >>> PolicyConfig(exploration="epsilon", epsilon=0.1).vw_args().split()[:3]
    ['--cb_explore_adf', '--epsilon', '0.1']
    """

    exploration: Exploration = "thompson"
    thompson_scale: float = field(default=0.5, metadata=_DECIDES)
    thompson_prior: float = field(default=20.0, metadata=_since(20.0))
    thompson_memory: float = field(default=1000.0, metadata=_since(1000.0))
    thompson_draws: int = field(default=256, metadata=_DECIDES)
    thompson_floor: float = field(default=0.0, metadata=_DECIDES)
    thompson_tries: int = field(default=1, metadata=_DECIDES)
    epsilon: float = 0.05
    gamma_scale: float = 10.0
    gamma_exponent: float = 0.5
    elimination: bool = False
    exploration_floor: float = 0.0
    optimism: float = field(default=0.0, metadata=_since(0.0))
    baseline_strength: float = field(default=0.0, metadata=_DECIDES)
    reward_range: tuple[float, float] = (-1.0, 1.0)
    softmax_lambda: float = 10.0
    learning_rate: float = 0.5
    power_t: float = 0.5
    l2: float = 0.0
    bits: int = 20
    interactions: tuple[str, ...] = tuple(  # "EM", "TM", "KM", "QM"
        context + ns.MODEL for context in (ns.EMBEDDING, ns.TASK, ns.CLUSTERS,
                                           ns.CROSSED_ESTIMATE))
    embedding_dims: int | None = None
    seed: int = 0
    extra_args: str = ""

    def __post_init__(self) -> None:
        _check(self.exploration in EXPLORATIONS, f"exploration must be one of {EXPLORATIONS}")
        _check(_finite(self.epsilon) and 0.0 <= self.epsilon <= 1.0, "epsilon must be in [0, 1]")
        _check(_finite(self.thompson_scale) and 0 < self.thompson_scale <= 10,
               "thompson_scale must be in (0, 10]")
        _check(_finite(self.thompson_prior) and 0 < self.thompson_prior <= 1e6,
               "thompson_prior must be in (0, 1e6]")
        _check(_finite(self.thompson_memory) and 1 <= self.thompson_memory <= 1e9,
               "thompson_memory must be in [1, 1e9]")
        _check(_finite(self.thompson_floor) and 0 <= self.thompson_floor <= 0.5,
               "thompson_floor must be in [0, 0.5]")
        _check(isinstance(self.thompson_tries, int) and not isinstance(self.thompson_tries, bool)
               and 0 <= self.thompson_tries <= 1000, "thompson_tries must be in [0, 1000]")
        _check(isinstance(self.thompson_draws, int) and not isinstance(self.thompson_draws, bool)
               and 16 <= self.thompson_draws <= 100_000, "thompson_draws must be in [16, 1e5]")
        _check(_finite(self.gamma_scale) and self.gamma_scale > 0, "gamma_scale must be > 0")
        _check(_finite(self.gamma_exponent) and self.gamma_exponent >= 0,
               "gamma_exponent must be >= 0")
        _check(isinstance(self.elimination, bool), "elimination must be a bool")
        _check(_finite(self.exploration_floor) and 0.0 <= self.exploration_floor <= 0.5,
               "exploration_floor must be in [0, 0.5]")
        _check(not self.elimination,
               "elimination was removed: squareCB runs one rule, the adapter's, and VW's "
               "--squarecb --elim no longer runs; exploration='regcb' is VW's exploration by "
               "confidence bounds")
        _check(_finite(self.optimism) and 0.0 <= self.optimism <= 10.0,
               "optimism must be in [0, 10]")
        _check(self.optimism == 0 or self.exploration == "squarecb",
               "optimism is an option of squarecb exploration (set exploration='squarecb')")
        _check(self.exploration not in _ADAPTER_EXPLORES
               or not self._extra_sets(*_EXPLORATION_FLAGS),
               "with squareCB or Thompson sampling the adapter explores: extra_args must not "
               "choose VW's exploration")
        _check(_finite(self.baseline_strength) and 0 <= self.baseline_strength <= 1e6,
               "baseline_strength must be in [0, 1e6]")
        _check(self.baseline_strength == 0 or self.exploration == "squarecb",
               "baseline_strength is an option of squarecb exploration (set "
               "exploration='squarecb')")
        low, high = (self.reward_range if isinstance(self.reward_range, tuple)
                     and len(self.reward_range) == 2 else (math.nan, math.nan))
        _check(_finite(low) and _finite(high) and low < high,
               "reward_range must be (low, high) with low < high")
        _check(_finite(self.softmax_lambda) and self.softmax_lambda > 0,
               "softmax_lambda must be > 0")
        _check(_finite(self.learning_rate) and self.learning_rate > 0,
               "learning_rate must be > 0")
        _check(_finite(self.power_t) and self.power_t >= 0, "power_t must be >= 0")
        _check(_finite(self.l2) and self.l2 >= 0, "l2 must be >= 0")
        _check(isinstance(self.bits, int) and 12 <= self.bits <= 30, "bits must be in [12, 30]")
        for pair in self.interactions:
            _check(isinstance(pair, str) and len(pair) == 2 and pair.isalpha(),
                   f"interaction {pair!r} must be two namespace letters, e.g. 'EM'")
        _check(self.embedding_dims is None
               or (isinstance(self.embedding_dims, int) and self.embedding_dims >= 1),
               "embedding_dims must be None (raw embedding) or a positive integer")
        object.__setattr__(self, "seed", check_seed(self.seed))
        _check(not self._extra_sets("--elim", "--cb_min_cost", "--cb_max_cost"),
               "extra_args must not set --elim or the cost bounds: use reward_range")
        _check("-i " not in f" {self.extra_args} " and "--initial_regressor" not in self.extra_args,
               "extra_args must not load a model; the router restores its own checkpoints")

    def _extra_sets(self, *flags: str) -> bool:
        """Whether ``extra_args`` names any of ``flags`` (as whole words)."""
        padded = f" {self.extra_args} "
        return any(f" {flag} " in padded for flag in flags)

    def _exploration_args(self) -> list[str]:
        # VW's cost is the negated reward: bounds on the reward are bounds on the cost
        bounds = ["--cb_min_cost", f"{-self.reward_range[1]:g}",
                  "--cb_max_cost", f"{-self.reward_range[0]:g}"]
        if self.exploration == "epsilon":
            return ["--epsilon", f"{self.epsilon:g}"]
        if self.exploration == "softmax":
            return ["--softmax", "--lambda", f"{self.softmax_lambda:g}"]
        return ["--regcbopt", *bounds]

    def vw_args(self) -> str:
        """The VW command line this configuration stands for."""
        if self.exploration in _ADAPTER_EXPLORES:
            # a regressor; the adapter explores (policies._squarecb, ._thompson)
            args = ["--cb_adf", "--cb_type", "mtr"]
        else:
            args = ["--cb_explore_adf", *self._exploration_args()]
        args += ["--learning_rate", f"{self.learning_rate:g}", "--power_t", f"{self.power_t:g}",
                 "-b", str(self.bits), "--random_seed", str(self.seed)]
        if self.l2 > 0:
            args += ["--l2", f"{self.l2:g}"]
        for pair in self.interactions:
            args += ["-q", pair]
        if self.extra_args.strip():
            args += self.extra_args.split()
        return " ".join(args)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterConfig:
    """How the router turns outcomes into rewards, and its limits.

    - ``cost_weight`` (quality points per US dollar): the reward is
      ``quality - cost_weight * cost_usd - latency_weight * latency_s``. A weight of 20 means
      a perfect answer is worth $0.05: a model that costs $0.01 more must be 0.2 better.
      It can be overridden per request.
    - ``reward_wait_s``: after this long without a reward, an event is learned with
      ``default_reward`` (Azure Personalizer's semantics); later rewards are refused.
    - ``neighbours``: how many similar past tasks the FAISS memory recalls; each model's
      estimate pools its outcomes among them. With ``per_model_neighbours`` it uses instead
      that many of its own nearest outcomes among the ``neighbours`` (e.g. 8 of 256): a model
      the router seldom picks then still gets an estimate for this kind of task, not its
      overall mean. ``memory_size`` caps how many tasks the
      memory keeps (the oldest go first). Up to ``exact_recall_limit`` remembered outcomes
      the search is exact; from there the memory moves to an IVF index (128 lists, 8
      probed, fitted then), whose search cost grows ~16x slower than the exact one's;
      ``None`` keeps it exact. A ``memory_size`` of 65,536 or more makes the memory compact:
      8-bit codes in about ``2 * sqrt(memory_size)`` lists (2,048 at a million tasks,
      about 400 MB), moved to once it holds 16 rows a list (see
      ``bandit_router.core._memory.Memory``).
    - ``prior_strength``: pseudo-observations of the catalog's quality prior blended into
      the neighbours' mean quality.
    - ``task_difficulty``: move each model's prior by how the task's neighbours did against
      their models' overall means, so that a model seldom tried near a hard task is not
      thought better there than the models that failed nearby (exploration would otherwise
      try it on the hardest tasks, and it would look worse than it is). Off by default: it
      lifted RouterDC-7 and the worst seeds of benchmarks whose hard questions are hard
      for every model, and tripled one seed's regret on the peer bench, where what is hard
      for one model is not for another (docs/decisions.md).
    - ``max_task_chars``: longer tasks are refused (the embedder reads 256 word pieces anyway).
    - ``store_task_text``: keep the task text in the event log. Off by default: a hash and
      the embedding are enough to rebuild the router.
    - ``checkpoint_every``: write a policy checkpoint after this many learned rewards.
    - ``pacing_gain``: how hard budgets pace the cost weight: it is multiplied by
      ``exp(pacing_gain * (used share of the budget - elapsed share of its window))``.
    - ``alert_webhook_url``: budget alerts are POSTed here as JSON (and always logged).
    - ``task_clusters``: sizes of the k-means codebooks of task embeddings whose cluster ids
      the policy sees (namespace ``K``); ``()`` turns them off. They are fitted once, on the
      first ``cluster_after`` rewarded tasks, and shared by every process (see
      ``bandit_router.core._clusters``). 500 instead of 1,000 did better on streams judged
      on their first few thousand requests and worse on others (docs/decisions.md).
    - ``database_timeout_s``: how long one database call may wait for a lock (SQLite's busy
      timeout) or for a connection (PostgreSQL's connect timeout) before it fails; the HTTP
      service then answers 503 with ``Retry-After``, and the next call tries again.
    - ``learn_rate_per_tenant_per_min``: how many rewards per minute of one tenant (an API
      key's team, or ``None``'s traffic as one) the policy learns, a tenth of a minute's
      worth at once; past it a tenant's rewards are stored, settled and reported as usual but held
      back from learning (``RewardReceipt.held_back``), so a flood of extreme rewards from
      one key moves the policy at most this much. ``None``: no limit. Per process.
    - ``maintenance_on_request``: let ``select``/``reward`` sweep expired events and learn
      what is pending. Right for a library used in one process; a server turns it off and
      does both from one background thread, so requests never wait for learning.
    """

    cost_weight: float = 20.0
    latency_weight: float = 0.0
    reward_wait_s: float = 600.0
    default_reward: float = 0.0
    neighbours: int = 32
    per_model_neighbours: int | None = None
    memory_size: int = 50_000
    exact_recall_limit: int | None = 4096
    prior_strength: float = 2.0
    task_difficulty: bool = False
    default_output_tokens: int = 300
    max_task_chars: int = 100_000
    store_task_text: bool = False
    checkpoint_every: int = 1000
    embedding_cache_size: int = 4096
    maintenance_on_request: bool = True
    pacing_gain: float = 50.0
    alert_webhook_url: str | None = None
    task_clusters: tuple[int, ...] = (4, 8)
    cluster_after: int = 1000
    database_timeout_s: float = field(default=10.0, metadata=OPERATIONAL)
    learn_rate_per_tenant_per_min: float | None = field(default=None, metadata=OPERATIONAL)

    def __post_init__(self) -> None:
        for name in ("cost_weight", "latency_weight"):
            weight = getattr(self, name)
            _check(_finite(weight) and 0 <= weight <= MAX_WEIGHT,
                   f"{name} must be in [0, {MAX_WEIGHT:g}]")
        _check(_finite(self.reward_wait_s) and self.reward_wait_s > 0,
               "reward_wait_s must be > 0")
        _check(_finite(self.default_reward), "default_reward must be a finite number")
        _check(isinstance(self.neighbours, int) and 1 <= self.neighbours <= 1024,
               "neighbours must be in [1, 1024]")
        _check(self.per_model_neighbours is None
               or (isinstance(self.per_model_neighbours, int)
                   and not isinstance(self.per_model_neighbours, bool)
                   and 1 <= self.per_model_neighbours <= self.neighbours),
               "per_model_neighbours must be None (pool the neighbours) or in [1, neighbours]")
        _check(isinstance(self.memory_size, int) and self.memory_size >= self.neighbours,
               "memory_size must be >= neighbours")
        _check(self.exact_recall_limit is None
               or (isinstance(self.exact_recall_limit, int)
                   and not isinstance(self.exact_recall_limit, bool)
                   and self.exact_recall_limit >= 1024),
               "exact_recall_limit must be None (always exact) or an integer >= 1024")
        _check(_finite(self.prior_strength) and self.prior_strength > 0,
               "prior_strength must be > 0")
        _check(isinstance(self.task_difficulty, bool), "task_difficulty must be true or false")
        _check(isinstance(self.default_output_tokens, int) and self.default_output_tokens >= 1,
               "default_output_tokens must be >= 1")
        _check(isinstance(self.max_task_chars, int) and self.max_task_chars >= 1,
               "max_task_chars must be >= 1")
        _check(isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1,
               "checkpoint_every must be >= 1")
        _check(isinstance(self.embedding_cache_size, int) and self.embedding_cache_size >= 0,
               "embedding_cache_size must be >= 0")
        _check(_finite(self.pacing_gain) and 0 <= self.pacing_gain <= 100,
               "pacing_gain must be in [0, 100]")
        _check(isinstance(self.task_clusters, tuple)
               and all(isinstance(k, int) and not isinstance(k, bool) and 2 <= k <= 1024
                       for k in self.task_clusters)
               and len(set(self.task_clusters)) == len(self.task_clusters),
               "task_clusters must be a tuple of distinct cluster counts in [2, 1024]")
        _check(isinstance(self.cluster_after, int) and not isinstance(self.cluster_after, bool)
               and self.cluster_after >= max(self.task_clusters, default=1),
               "cluster_after must be an integer >= the largest of task_clusters")
        _check(not self.task_clusters or self.cluster_after <= self.memory_size,
               "cluster_after must be <= memory_size: the clusters are fitted on the memory")
        _check(_finite(self.database_timeout_s) and 0.1 <= self.database_timeout_s <= 3600,
               "database_timeout_s must be in [0.1, 3600]")
        rate = self.learn_rate_per_tenant_per_min
        _check(rate is None or (_finite(rate) and 1 <= rate <= 1e7),
               "learn_rate_per_tenant_per_min must be in [1, 1e7] or None")
        url = self.alert_webhook_url
        _check(url is None or (isinstance(url, str) and url.startswith(("http://", "https://"))
                               and len(url) <= 2000),
               "alert_webhook_url must be an http(s) URL")
