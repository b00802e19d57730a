"""The one adapter in front of Vowpal Wabbit's ``cb_explore_adf``.

Every call into VW lives here: parse, predict, learn, save and load (the text it parses is
written by ``_vw_text``).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np
import orjson
import vowpalwabbit
from vowpalwabbit import Example, LabelType, PredictionType

from .._config import PolicyConfig
from .._namespaces import MODEL
from ._base import Features, Policy
from ._squarecb import Optimism, squarecb_pmf, toward_baseline
from ._thompson import ClusterPosterior, NormalTable, Stacker, thompson_pmf
from ._vw_text import ExampleText, escaped_name

__all__ = ["VWPolicy"]

#: VW minimises cost, the router maximises reward: the one place the sign flips.
_COST_PER_REWARD = -1.0


#: Marks a model file that starts with the adapter's squareCB state.
_STATE_MAGIC = b"bandit-router squarecb state\n"
#: Marks a model file that starts with the adapter's Thompson sampling state.
_THOMPSON_MAGIC = b"bandit-router thompson state\n"

#: Examples kept as text by key (see ``Policy``): a decision formats its context and actions
#: to predict, and learning its reward uses the same text again.
_EXAMPLE_CACHE_SIZE = 4096
#: Parsed examples kept by key from a decision to its reward: a decision's examples take
#: ~0.5 MB of VW memory (each example has room for 256 namespaces), so only the newest few.
_PARSED_CACHE_SIZE = 32


def _label_text(label: tuple[int, float, float]) -> str:
    """VW's text for a CB label ``(action, cost, probability)``: the same whether it is parsed
    with its example or set on examples parsed before."""
    return f"0:{label[1]:.6g}:{label[2]:.6g}"


def _squarecb_state(head: bytes, *, scale: float) -> tuple[int, Optimism]:
    """The adapter's squareCB state saved before a model: examples learned, and the optimism
    counts; ValueError unless it is whole (checked before the model is loaded)."""
    try:
        state = orjson.loads(head)
        learned = state["learned"]
        if type(learned) is not int or learned < 0:
            raise ValueError("examples learned must be a whole number")
        return learned, Optimism.from_state(state["counts"], scale=scale)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"damaged squareCB state: {exc}") from None


def _is_namespace(ns: object) -> bool:
    """Whether ``ns`` names a VW namespace as the adapter writes them: one letter."""
    return isinstance(ns, str) and len(ns) == 1 and ns.isalpha()


def _baseline_terms(baseline: Mapping[str, Mapping[str, float]]
                    ) -> list[tuple[str, str, float]]:
    """``(namespace, feature, coefficient)`` of a ``baseline`` mapping; ValueError unless
    namespaces are single letters and coefficients finite numbers."""
    if not isinstance(baseline, Mapping):
        raise ValueError("baseline must map namespace letters to {feature: coefficient}")
    terms = []
    for ns, values in baseline.items():
        if not _is_namespace(ns):
            raise ValueError(f"baseline namespace {ns!r} must be one letter")
        if not isinstance(values, Mapping):
            raise ValueError(f"baseline namespace {ns!r} must map features to coefficients")
        for name, coef in values.items():
            if not (isinstance(coef, int | float) and math.isfinite(coef)):
                raise ValueError(f"baseline coefficient of {ns}:{name} must be a finite number")
            terms.append((ns, str(name), float(coef)))
    return terms


class _Memo:
    """A decision's name in the adapter's caches (its formatted and parsed examples, VW's
    scores): what :meth:`VWPolicy.decide` returns as the memo, compared by identity."""

    __slots__ = ()


class _Pending:
    """Examples VW parsed for decisions, kept by key until their rewards (see
    ``VWPolicy.learn``), with the workspace that parsed them."""

    def __init__(self, vw: vowpalwabbit.Workspace) -> None:
        self.vw = vw
        self.examples: OrderedDict[_Memo, list[Example]] = OrderedDict()

    def release(self) -> None:
        """Give every kept example back to its workspace."""
        while self.examples:
            self.vw.finish_example(self.examples.popitem()[1])


#: The share of a decision each model still owed tries in the task's cluster gets.
_TRY_SHARE = 0.05


def _mixed(pmf: list[float], chosen: list[bool], share: float) -> list[float]:
    """``pmf`` with ``share`` of it spread evenly over the ``chosen`` actions."""
    each = share / sum(chosen)
    return [(1.0 - share) * p + (each if c else 0.0) for p, c in zip(pmf, chosen, strict=True)]


class VWPolicy(Policy):
    """Vowpal Wabbit ``--cb_explore_adf``: one ADF example per eligible action.

    Context namespaces become the ``shared`` line, each action's namespaces one action line.
    A dense vector is written as ``index:value`` features (after the optional random
    projection of :attr:`PolicyConfig.embedding_dims`).

    ``pinned`` fixes the coefficients of some features, in reward units: ``{"A": {"cost":
    -1.0}}`` makes the feature ``A:cost`` lower the predicted reward by exactly its value.
    VW learns everything else; the pinned weights are written into the model before every
    prediction and update, so learning never moves them. ``crossed_only`` names namespaces
    whose features enter only through :attr:`PolicyConfig.interactions`, without linear terms
    of their own (VW's ``--ignore_linear``). ``baseline`` is what an action's reward is
    taken to be before VW has learned from it, as coefficients of its features (the router's:
    ``{"A": {"quality": 1, "cost": -1, "latency": -1}}``); with
    :attr:`PolicyConfig.baseline_strength` a decision weighs it against VW's prediction by the
    rewards learned for the action's model.

    >>> policy = VWPolicy(PolicyConfig(seed=3))
    >>> ctx = {"T": {"code": 1.0}}
    >>> acts = [{"M": {"cheap": 1.0}}, {"M": {"strong": 1.0}}]
    >>> for _ in range(200):
    ...     i, p = policy.predict(ctx, acts)
    ...     policy.learn(ctx, acts, i, reward=1.0 if i == 1 else 0.0, probability=p)
    >>> policy.pmf(ctx, acts)[1] > 0.8
    True
    """

    name = "vw"

    def __init__(self, config: PolicyConfig | None = None, *, input_dim: int | None = None,
                 pinned: Mapping[str, Mapping[str, float]] | None = None,
                 crossed_only: Sequence[str] = (),
                 baseline: Mapping[str, Mapping[str, float]] | None = None,
                 groups: Sequence[str] = (),
                 learned_range: tuple[float, float] | None = None,
                 evidence: tuple[str, str, float] | None = None) -> None:
        self.config = config or PolicyConfig()
        self.pinned = {ns: dict(values) for ns, values in (pinned or {}).items()}
        if isinstance(crossed_only, str):
            raise ValueError("crossed_only must be a sequence of namespace letters, not a str")
        for ns in crossed_only:
            if not _is_namespace(ns):
                raise ValueError(f"crossed_only namespace {ns!r} must be one letter")
        self.crossed_only = tuple(crossed_only)
        #: ``(namespace, feature, coefficient)``: an action's reward before it is learned
        self.baseline = _baseline_terms(baseline or {})
        if self.config.baseline_strength > 0 and not self.baseline:
            raise ValueError("baseline_strength weighs each action against its baseline: "
                             "give the policy one (VWPolicy(baseline=...))")
        if isinstance(groups, str) or not all(_is_namespace(ns) for ns in groups):
            raise ValueError("groups must be a sequence of context namespace letters")
        #: context namespaces whose features are the levels of the Thompson posterior
        self.groups = tuple(groups)
        if learned_range is not None and not (
                len(learned_range) == 2 and all(math.isfinite(x) for x in learned_range)
                and learned_range[0] < learned_range[1]):
            raise ValueError("learned_range must be (low, high) with low < high")
        #: where the learned part of a reward lies (the router's: a quality in [0, 1])
        self.learned_range = learned_range
        if evidence is not None and not (
                len(evidence) == 3 and _is_namespace(evidence[0])
                and isinstance(evidence[1], str) and isinstance(evidence[2], int | float)
                and math.isfinite(evidence[2]) and evidence[2] > 0):
            raise ValueError("evidence must be (namespace letter, feature, pseudo-count > 0)")
        #: the action feature saying how much stands behind its baseline (``_precision``)
        self.evidence = evidence
        #: the workspace's command line: the configuration's, and the linear terms left out
        self._args = " ".join([self.config.vw_args(),
                               *(f"--ignore_linear {ns}" for ns in self.crossed_only)])
        super().__init__(seed=self.config.seed)
        projection: np.ndarray | None = None
        if self.config.embedding_dims is not None and input_dim is not None:
            rng = np.random.default_rng(self.config.seed + 7919)
            projection = (rng.standard_normal((input_dim, self.config.embedding_dims))
                          / np.sqrt(self.config.embedding_dims)).astype(np.float32)
        #: writes contexts and actions as VW's text format
        self._text = ExampleText(projection=projection)
        self._vw = vowpalwabbit.Workspace(self._args + " --quiet")
        self._examples: OrderedDict[_Memo, list[str]] = OrderedDict()
        self._pending = _Pending(self._vw)
        self._parsed = self._pending.examples
        # given back when the policy goes, closed or not: held, they keep VW's memory alive
        weakref.finalize(self, self._pending.release)
        self._pins: list[tuple[int, float]] = []
        self._index_pins()
        #: with squareCB: the counts behind the optimism bonus (zero without ``optimism``), and
        #: the examples learned (the ``t`` of squareCB's gamma)
        self._optimism = (Optimism(scale=self.config.optimism)
                          if self.config.exploration == "squarecb" else None)
        #: with Thompson sampling: the posterior per cluster and model (``_thompson``)
        self._posterior = (self._new_posterior() if self.config.exploration == "thompson"
                           else None)
        self._stacker = Stacker(memory=self.config.thompson_memory)
        self._normals = NormalTable(seed=self.config.seed)
        #: VW's scores of each decision, by key, to score its prediction on the outcome
        self._decided: OrderedDict[_Memo, list[float]] = OrderedDict()
        #: VW runs a regressor and the adapter explores (squareCB, Thompson sampling)
        self._regressor = self._optimism is not None or self._posterior is not None
        self._learned = 0
        #: with a regressor: examples without features, set up once per workspace (see
        #: ``_learn_padded``)
        self._blanks: list[Example] = []

    def _index_pins(self) -> None:
        self._pins = [(self._vw.hash_feature(escaped_name(name), self._vw.hash_space(ns)),
                       _COST_PER_REWARD * value)
                      for ns, values in self.pinned.items() for name, value in values.items()]
        self._pin()

    def _pin(self) -> None:
        for index, weight in self._pins:
            self._vw.set_weight(index, 0, weight)

    def _lines(self, context: Features, actions: Sequence[Features],
               key: _Memo | None) -> list[str]:
        """The unlabelled example: the shared line, then one line per action (kept under
        ``key`` until it is learned)."""
        if key is not None:
            lines = self._examples.get(key)
            if lines is not None and len(lines) == len(actions) + 1:
                return lines
        lines = [self._text.shared(context)]
        lines += [self._text.features(action) for action in actions]
        if key is not None:
            self._examples[key] = lines
            if len(self._examples) > _EXAMPLE_CACHE_SIZE:
                self._examples.popitem(last=False)
        return lines

    def _example(self, context: Features, actions: Sequence[Features],
                 label: tuple[int, float, float] | None = None,
                 key: _Memo | None = None) -> list[str]:
        lines = self._lines(context, actions, key)
        if label is not None and 0 <= label[0] < len(actions):
            lines = list(lines)
            i = label[0] + 1
            lines[i] = f"{_label_text(label)} {lines[i]}"
        return lines

    # -- calls into VW: its public Python API only ---------------------------------------------
    # A decision's examples are parsed once (``Workspace.parse``) and, with a key, kept for the
    # update of its reward, which then only sets the chosen action's label.
    def _parse(self, lines: list[str]) -> list[Example]:
        parsed: list[Example] = self._vw.parse("\n".join(lines),
                                               labelType=LabelType.CONTEXTUAL_BANDIT)
        return parsed

    def _finish(self, examples: list[Example]) -> None:
        self._vw.finish_example(examples)

    def _predict(self, examples: list[Example]) -> list[float]:
        """VW's score of each action (predicted costs, or probabilities when VW explores)."""
        kind = PredictionType.ACTION_SCORES if self._regressor else PredictionType.ACTION_PROBS
        return list(self._vw.predict(examples, prediction_type=kind))

    def _learn_padded(self, shared: Example, chosen: Example, index: int,
                      n_actions: int) -> None:
        """Learn a labelled ``chosen`` example as the regressor (squareCB, Thompson): from
        the shared example, the chosen action's at its place, and examples without features
        for the others.

        ``--cb_adf --cb_type mtr`` trains on the chosen action alone, but first predicts
        every action in the list and counts them (its importance weight is the events
        learned over the actions seen); stand-ins without features keep that count at a
        fraction of the prediction's cost. The weights learned are the same as with the
        whole list (a test compares them with a workspace that learned every action's text);
        VW's own loss statistics, which nothing here reads, are not."""
        while len(self._blanks) < n_actions - 1:
            blank = Example(self._vw, labelType=LabelType.CONTEXTUAL_BANDIT)
            blank.setup_example()
            self._blanks.append(blank)
        try:
            self._vw.learn([shared, *self._blanks[:index], chosen,
                            *self._blanks[index:n_actions - 1]])
        except BaseException:
            self._blanks = []  # VW may have stopped part way, with the stand-ins changed
            raise

    def _run(self, lines: list[str], *, learn: bool) -> list[float]:
        examples = self._parse(lines)
        try:
            if learn:
                self._vw.learn(examples)
                return []
            return self._predict(examples)
        finally:
            self._finish(examples)

    def _scores(self, context: Features, actions: Sequence[Features],
                key: _Memo | None) -> list[float]:
        """VW's scores of each action. With a ``key`` (a decision's fresh memo) the parsed
        examples are kept (for the newest ``_PARSED_CACHE_SIZE`` keys) for :meth:`learn` of
        the same key, which then skips the parse."""
        if key is None:
            return self._run(self._example(context, actions), learn=False)
        examples = self._parse(self._lines(context, actions, key))
        try:
            scores = self._predict(examples)
        except BaseException:
            self._finish(examples)
            raise
        self._parsed[key] = examples
        if len(self._parsed) > _PARSED_CACHE_SIZE:
            self._finish(self._parsed.popitem(last=False)[1])
        return scores

    # -- the policy -------------------------------------------------------------------------
    @staticmethod
    def _identity(action: Features) -> tuple[str, ...]:
        """What the optimism counts are kept by: the names of the action's model (``M``)
        features; for an action without them, every ``namespace:name`` it has."""
        names = action.get(MODEL)
        if isinstance(names, Mapping):
            return tuple(names)
        return tuple(sorted(f"{ns}:{name}" for ns, values in action.items()
                            if isinstance(values, Mapping) for name in values))

    def _baseline_costs(self, actions: Sequence[Features]) -> list[float]:
        """Each action's baseline (see ``baseline``) as a VW cost: a feature an action lacks
        counts as 0."""
        out = []
        for action in actions:
            reward = 0.0
            for ns, name, coef in self.baseline:
                values = action.get(ns)
                # (a plain dict first: the ABC check is slow, and this runs per decision)
                if type(values) is dict or isinstance(values, Mapping):
                    reward += coef * float(values.get(name, 0.0))
            out.append(_COST_PER_REWARD * reward)
        return out

    def _optimistic_pmf(self, costs: list[float], actions: Sequence[Features]) -> list[float]:
        assert self._optimism is not None
        identities = [self._identity(a) for a in actions]
        bonus = self._optimism.bonus(identities)
        if self.config.baseline_strength > 0:  # (the constructor refused it without one)
            costs = toward_baseline(costs, self._baseline_costs(actions),
                                    self._optimism.counts_of(identities),
                                    strength=self.config.baseline_strength)
        # the one sign flip again: a bonus on the reward lowers VW's cost
        adjusted = [c + _COST_PER_REWARD * b for c, b in zip(costs, bonus, strict=True)]
        gamma = self.config.gamma_scale * self._learned ** self.config.gamma_exponent
        return squarecb_pmf(adjusted, gamma=gamma)

    def _new_posterior(self) -> ClusterPosterior:
        return ClusterPosterior(prior_strength=self.config.thompson_prior,
                                memory=self.config.thompson_memory)

    def _known(self, action: Features) -> float:
        """The pinned part of an action's reward: what its features fix without learning."""
        known = 0.0
        for ns, values in self.pinned.items():
            features = action.get(ns)
            if type(features) is dict or isinstance(features, Mapping):
                for name, coef in values.items():
                    known += coef * float(features.get(name, 0.0))
        return known

    def _cells(self, context: Features, action: Features) -> list[tuple[str, ...]]:
        """The posterior's cells for an action in a context: the model overall, then the
        model in each feature of the context's group namespaces, in order."""
        identity = self._identity(action)
        cells = [identity]
        for ns in self.groups:
            values = context.get(ns)
            if type(values) is dict or isinstance(values, Mapping):
                cells += [(f"{ns}:{name}", *identity) for name in values]
        return cells

    def _thompson(self, costs: list[float], context: Features, actions: Sequence[Features],
                  draw: float | None) -> list[float]:
        """Thompson sampling's distribution over ``actions`` (see ``policies._thompson``)."""
        assert self._posterior is not None
        cfg = self.config
        known = [self._known(a) for a in actions]
        # the baseline's learned part (the router's: the neighbours' quality estimate)
        priors = [_COST_PER_REWARD * b - k for b, k in
                  zip(self._baseline_costs(actions), known, strict=True)]
        w = self._stacker.weight()
        means, sds, untried = [], [], []
        for action, cost, prior, fixed in zip(actions, costs, priors, known, strict=True):
            cells = self._cells(context, action)
            mean, precision, variance = self._posterior.estimate(
                prior, cells, prior_precision=self._precision(action))
            finest = self._posterior.cells.get(cells[-1]) if len(cells) > 1 else None
            untried.append(cfg.thompson_tries > 0 and len(cells) > 1
                           and (finest is None or finest[2] < cfg.thompson_tries))
            means.append(mean + w * (_COST_PER_REWARD * cost - fixed - mean))
            sds.append(cfg.thompson_scale * math.sqrt(variance / precision))
        low, high = self.learned_range or (-math.inf, math.inf)
        normals = self._normals.rows(self._digest(draw), draws=cfg.thompson_draws,
                                     width=len(actions))
        pmf = thompson_pmf(means, sds, normals=normals, offsets=known, low=low, high=high)
        floor = cfg.thompson_floor / math.sqrt(1.0 + self._learned / 100.0)
        if not (any(untried) or floor > 0):
            return pmf
        # the models that could still be the best here, whatever the posterior says (one that
        # could not pay for itself with a perfect answer cannot; the best's own always can)
        best = max(min(max(m, low), high) + k for m, k in zip(means, known, strict=True))
        plausible = [high + k >= best for k in known]
        # a model not yet tried ``thompson_tries`` times in this task's finest cluster gets a
        # share (its posterior there is a guess from elsewhere: a specialist looks weak on
        # average)
        owed = [u and ok for u, ok in zip(untried, plausible, strict=True)]
        if any(owed):
            pmf = _mixed(pmf, owed, min(_TRY_SHARE * sum(owed), 0.5))
        if floor > 0:  # a decaying share for every plausible model
            pmf = _mixed(pmf, plausible, floor)
        return pmf

    def _precision(self, action: Features) -> float:
        """How many outcomes the action's own estimate (its baseline) weighs as: with
        ``evidence`` ``(ns, feature, pseudo)``, whose value is ``n / (n + pseudo)`` for ``n``
        outcomes behind the estimate, ``n + pseudo``; else one."""
        if self.evidence is None:
            return 1.0
        ns, name, pseudo = self.evidence
        values = action.get(ns)
        share = (float(values.get(name, 0.0))
                 if type(values) is dict or isinstance(values, Mapping) else 0.0)
        return pseudo / (1.0 - min(max(share, 0.0), 0.999))

    def _digest(self, draw: float | None) -> int:
        """Which posterior draws a decision takes: fixed by the policy seed and the decision's
        ``draw`` (or the seed alone), so the same decision in the same state gives the same
        distribution again."""
        digest = hashlib.blake2b(f"{self.seed}:{draw!r}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def pmf(self, context: Features, actions: Sequence[Features], *,
            draw: float | None = None) -> list[float]:
        return self._pmf(context, actions, None, draw)

    def _propose(self, context: Features, actions: Sequence[Features],
                 draw: float | None) -> tuple[list[float], object]:
        memo = _Memo()  # names this decision's kept examples and scores until its reward
        return self._pmf(context, actions, memo, draw), memo

    def _pmf(self, context: Features, actions: Sequence[Features], key: _Memo | None,
             draw: float | None) -> list[float]:
        scores = self._scores(context, actions, key)
        if self._posterior is not None:  # VW predicted costs; Thompson sampling here
            if key is not None:
                self._decided[key] = scores
                if len(self._decided) > _EXAMPLE_CACHE_SIZE:
                    self._decided.popitem(last=False)
            scores = self._thompson(scores, context, actions, draw)
        elif self._optimism is not None:  # VW predicted costs; squareCB is applied here
            scores = self._optimistic_pmf(scores, actions)
        raw = [max(float(p), 0.0) for p in scores]
        total = sum(raw)
        # regcbopt gives every tied best action probability 1: normalise, so the probability
        # logged is the one the action was drawn with
        pmf = [p / total for p in raw] if total > 0 else [1.0 / len(raw)] * len(raw)
        floor = self.config.exploration_floor
        if floor > 0:
            pmf = [(1.0 - floor) * p + floor / len(pmf) for p in pmf]
        return pmf

    def learn(self, context: Features, actions: Sequence[Features], index: int, reward: float,
              probability: float, *, memo: object = None) -> None:
        key = memo if isinstance(memo, _Memo) else None
        cost = _COST_PER_REWARD * reward
        if self._regressor:
            probability = 1.0  # squareCB's regression is not importance-weighted
        label = (index, cost, max(probability, 1e-6))
        examples = self._parsed.pop(key, None) if key is not None else None
        labelled = 0 <= index < len(actions)
        # VW's prediction for the chosen action before this update (Thompson's stacker)
        vw_cost: float | None = None
        predict = False  # a rebuild from the log: predict the chosen action before learning
        if self._posterior is not None and labelled:
            decided = self._decided.pop(key, None) if key is not None else None
            if decided is not None and len(decided) == len(actions):
                vw_cost = decided[index]
            else:
                predict = True
        try:
            if examples is not None and len(examples) == len(actions) + 1 and labelled:
                try:  # the examples its decision parsed: only the label is new
                    chosen = examples[index + 1]
                    chosen.set_label_string(_label_text(label))
                    # parsed without a label, VW took it for held-out; labelled text is not
                    chosen.set_test_only(False)
                    if predict:  # its decision predicted every action
                        vw_cost = float(examples[0].get_prediction(
                            PredictionType.ACTION_SCORES)[index])
                    if not self._regressor:
                        self._vw.learn(examples)
                    else:
                        self._learn_padded(examples[0], chosen, index, len(actions))
                finally:
                    self._finish(examples)
            else:
                if examples is not None:
                    self._finish(examples)
                if self._regressor and labelled:
                    # the regressor learns the shared line and the chosen action's alone:
                    # format only those (a rebuild or a warm start formats nothing else)
                    cached = self._examples.get(key) if key is not None else None
                    if cached is not None and len(cached) == len(actions) + 1:
                        shared, chosen_line = cached[0], cached[index + 1]
                    else:
                        shared, chosen_line = (self._text.shared(context),
                                               self._text.features(actions[index]))
                    parsed = self._parse([shared, f"{_label_text(label)} {chosen_line}"])
                    try:
                        if predict:  # the same parse serves the prediction and the update
                            vw_cost = float(self._predict(parsed)[0])
                        self._learn_padded(parsed[0], parsed[1], index, len(actions))
                    finally:
                        self._finish(parsed)
                else:
                    self._run(self._example(context, actions, label, key), learn=True)
            if self._optimism is not None and labelled:
                self._learned += 1  # squareCB's t: examples learned with a label
                self._optimism.record(self._identity(actions[index]))
            if self._posterior is not None and labelled:
                self._learned += 1
                action = actions[index]
                fixed = self._known(action)
                cells = self._cells(context, action)
                if vw_cost is not None:
                    prior = _COST_PER_REWARD * self._baseline_costs([action])[0] - fixed
                    self._stacker.update(reward - fixed, _COST_PER_REWARD * vw_cost - fixed,
                                         self._posterior.estimate(
                                             prior, cells,
                                             prior_precision=self._precision(action))[0])
                self._posterior.update(cells, reward - fixed)
        finally:
            if key is not None:
                self._examples.pop(key, None)  # an event is learned once
            self._pin()  # learning moved the pinned weights (even part way): put them back

    def to_bytes(self) -> bytes:
        fd, path = tempfile.mkstemp(suffix=".vw")
        os.close(fd)
        try:
            self._vw.save(path)
            with open(path, "rb") as fh:
                model = fh.read()
        finally:
            os.unlink(path)
        if self._posterior is not None:
            state = orjson.dumps({"learned": self._learned,
                                  "cells": self._posterior.to_state(),
                                  "stacker": self._stacker.to_state()})
            return _THOMPSON_MAGIC + state + b"\n" + model
        if self._optimism is None:
            return model
        state = orjson.dumps({"learned": self._learned, "counts": self._optimism.to_state()})
        return _STATE_MAGIC + state + b"\n" + model

    def load_bytes(self, data: bytes) -> None:
        if not data:
            raise ValueError("empty VW model")
        state = None
        posterior = None
        if data.startswith(_STATE_MAGIC):
            head, _, data = data[len(_STATE_MAGIC):].partition(b"\n")
            state = _squarecb_state(head, scale=self.config.optimism)
        elif data.startswith(_THOMPSON_MAGIC):
            head, _, data = data[len(_THOMPSON_MAGIC):].partition(b"\n")
            posterior = self._thompson_state(head)
        if (state is None) != (self._optimism is None) or (
                (posterior is None) != (self._posterior is None)):
            raise ValueError("the model was saved with other exploration settings")
        fd, path = tempfile.mkstemp(suffix=".vw")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            # the full arguments again: VW's model file does not keep all of them (--l2)
            workspace = vowpalwabbit.Workspace(f"{self._args} --quiet -i {path}")
        finally:
            os.unlink(path)
        self._pending.release()
        self._vw.finish()
        self._vw = self._pending.vw = workspace
        self._blanks = []  # set up by the old workspace
        self._index_pins()
        if state is not None:
            self._learned, self._optimism = state
        if posterior is not None:
            self._learned, self._posterior, self._stacker = posterior

    def _thompson_state(self, head: bytes) -> tuple[int, ClusterPosterior, Stacker]:
        """The Thompson state saved before a model; ValueError unless it is whole."""
        try:
            state = orjson.loads(head)
            learned = state["learned"]
            if type(learned) is not int or learned < 0:
                raise ValueError("examples learned must be a whole number")
            stacker = Stacker(memory=self.config.thompson_memory)
            stacker.load_state(state["stacker"])
            return learned, ClusterPosterior.from_state(
                state["cells"], prior_strength=self.config.thompson_prior,
                memory=self.config.thompson_memory), stacker
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"damaged Thompson state: {exc}") from None

    def close(self) -> None:
        self._pending.release()
        self._vw.finish()
