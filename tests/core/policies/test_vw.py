from __future__ import annotations

import numpy as np
import pytest

from bandit_router import PolicyConfig
from bandit_router.core.policies import VWPolicy


def test_learns_which_action_pays_in_each_context() -> None:
    policy = VWPolicy(PolicyConfig(seed=0))
    acts = [{"M": {"a": 1.0}}, {"M": {"b": 1.0}}]
    rng = np.random.default_rng(0)
    for _ in range(1500):
        ctx = int(rng.integers(2))
        i, p = policy.predict({"T": {f"c{ctx}": 1.0}}, acts)
        reward = 1.0 if i == ctx else 0.0  # action a pays in context 0, b in context 1
        policy.learn({"T": {f"c{ctx}": 1.0}}, acts, i, reward=reward, probability=p)
    assert policy.pmf({"T": {"c0": 1.0}}, acts)[0] > 0.8
    assert policy.pmf({"T": {"c1": 1.0}}, acts)[1] > 0.8


def test_projection_reduces_the_embedding() -> None:
    policy = VWPolicy(PolicyConfig(embedding_dims=8), input_dim=64)
    shared = policy._example({"E": np.ones(64, np.float32) / 8}, [{"M": {"a": 1.0}}])[0]
    assert len(shared.split()) == 2 + 8  # "shared", "|E", eight projected features


def test_corrupt_model_bytes_raise() -> None:
    policy = VWPolicy(PolicyConfig(exploration="epsilon"))
    with pytest.raises(RuntimeError):
        policy.load_bytes(b"not a model" * 10)
    with pytest.raises(ValueError):  # Thompson sampling expects its state first
        VWPolicy().load_bytes(b"not a model" * 10)
    with pytest.raises(ValueError):  # and squareCB its own
        VWPolicy(PolicyConfig(exploration="squarecb")).load_bytes(b"not a model" * 10)
    with pytest.raises(ValueError):
        policy.load_bytes(b"")
    assert len(policy.pmf({"T": {"x": 1.0}}, [{"M": {"a": 1.0}}])) == 1  # still usable


@pytest.mark.parametrize("config", [PolicyConfig(l2=1e-3), PolicyConfig(),
                                    PolicyConfig(exploration="epsilon", learning_rate=0.1)])
def test_learning_after_a_reload_matches_learning_straight_on(config: PolicyConfig) -> None:
    """Settings VW does not keep in its model file (such as --l2) survive a reload."""
    rng = np.random.default_rng(0)
    data = []
    for _ in range(300):
        ctx = {"E": rng.normal(size=8).astype(np.float32), "T": {"x": float(rng.random())}}
        acts = [{"M": {f"m{i}": 1.0}, "A": {"cost": float(rng.random())}} for i in range(3)]
        data.append((ctx, acts, int(rng.integers(3)), float(rng.random())))
    straight = VWPolicy(config, pinned={"A": {"cost": -1.0}})
    for ctx, acts, i, r in data:
        straight.learn(ctx, acts, i, reward=r, probability=0.5)
    reloaded = VWPolicy(config, pinned={"A": {"cost": -1.0}})
    for ctx, acts, i, r in data[:100]:
        reloaded.learn(ctx, acts, i, reward=r, probability=0.5)
    fresh = VWPolicy(config, pinned={"A": {"cost": -1.0}})
    fresh.load_bytes(reloaded.to_bytes())
    for ctx, acts, i, r in data[100:]:
        fresh.learn(ctx, acts, i, reward=r, probability=0.5)
    probe_ctx, probe_acts = data[0][0], data[0][1]
    assert np.allclose(fresh.pmf(probe_ctx, probe_acts), straight.pmf(probe_ctx, probe_acts),
                       atol=1e-6)


def test_pinned_weights_act_exactly_and_never_move() -> None:
    policy = VWPolicy(PolicyConfig(exploration="epsilon", epsilon=0.0),
                      pinned={"A": {"cost": -1.0}})
    acts = [{"M": {"a": 1.0}, "A": {"cost": 0.0}}, {"M": {"b": 1.0}, "A": {"cost": 0.0}}]
    for _ in range(300):  # b is worth 0.3 more than a
        for i, r in ((0, 0.5), (1, 0.8)):
            policy.learn({"T": {"x": 1.0}}, acts, i, reward=r, probability=0.5)
    assert policy.pmf({"T": {"x": 1.0}}, acts)[1] > 0.99
    dear_b = [acts[0], {"M": {"b": 1.0}, "A": {"cost": 0.5}}]  # now b costs 0.5 more
    assert policy.pmf({"T": {"x": 1.0}}, dear_b)[0] > 0.99
    cheap_b = [acts[0], {"M": {"b": 1.0}, "A": {"cost": 0.1}}]
    assert policy.pmf({"T": {"x": 1.0}}, cheap_b)[1] > 0.99


def test_examples_reused_as_text_match_fresh_formatting() -> None:
    """A decision's example is formatted once and reused to learn its reward; a changed
    action (or context) is formatted anew."""
    policy = VWPolicy()
    emb = np.linspace(-1, 1, 16, dtype=np.float32)
    emb[3] = 0.0  # zeros are left out
    ctx = {"E": emb, "T": {"x": 0.25}}
    acts = [{"M": {"a": 1.0}, "A": {"cost": 0.125}}, {"M": {"b b": 1.0}, "A": {"cost": 0.0}}]
    first = policy._example(ctx, acts)
    again = policy._example({"E": emb.copy(), "T": {"x": 0.25}},
                            [{ns: dict(v) for ns, v in a.items()} for a in acts], (1, -0.5, 0.5))
    fresh = VWPolicy()._example(ctx, acts, (1, -0.5, 0.5))
    assert again == fresh and first == [fresh[0], fresh[1], first[2]]
    assert fresh[2].startswith("0:-0.5:0.5 |M b_b ")
    assert " 3:" not in fresh[0] and " 4:" in fresh[0]
    assert fresh[0].startswith("shared |E 0:-1 1:-0.86667")
    acts[0]["A"]["cost"] = 0.25
    assert policy._example(ctx, acts)[1] == "|M a |A cost:0.25"


def test_a_memo_shares_the_formatted_example_and_learns_the_same() -> None:
    """The router keeps each decision's memo for its reward, so learning it reuses the
    example formatted to decide; the policy learned must equal one formatted twice, and a memo
    that is not the policy's own changes nothing."""
    config = PolicyConfig(exploration="squarecb", seed=4)
    kept, plain = VWPolicy(config), VWPolicy(config)
    rng = np.random.default_rng(1)
    acts = [{"M": {"a": 1.0}, "A": {"cost": 0.1}}, {"M": {"b": 1.0}, "A": {"cost": 0.3}}]
    for k in range(300):
        ctx = {"E": rng.normal(size=8).astype(np.float32), "T": {f"t{k % 3}": 1.0}}
        i, p, _, memo = kept.decide(ctx, acts, draw=0.5)
        j, q, _, _ = plain.decide(ctx, acts, draw=0.5)
        assert (i, p) == (j, q) and memo is not None and memo in kept._examples
        kept.learn(ctx, acts, i, reward=float(i == k % 2), probability=p, memo=memo)
        plain.learn(ctx, acts, j, reward=float(j == k % 2), probability=q,
                    memo=f"e{k}" if k % 2 else object())
        assert memo not in kept._examples  # learned once, then dropped
    probe = {"E": np.ones(8, np.float32), "T": {"t1": 1.0}}
    assert kept.pmf(probe, acts) == plain.pmf(probe, acts)


@pytest.mark.parametrize("config", [
    PolicyConfig(exploration="squarecb", seed=1), PolicyConfig(seed=1, exploration="epsilon"),
    PolicyConfig(seed=1, exploration="softmax"), PolicyConfig(seed=1, exploration="regcb"),
    PolicyConfig(exploration="squarecb", seed=1, exploration_floor=0.1),
    PolicyConfig(exploration="squarecb", seed=1, extra_args="--sgd"),
    PolicyConfig(exploration="squarecb", seed=1, optimism=0.3)],
    ids=["squarecb", "epsilon", "softmax", "regcb", "floor", "sgd", "optimism"])
def test_rewards_learned_late_and_out_of_order_match_the_text_path(
        config: PolicyConfig) -> None:
    """A keyed decision keeps VW's parsed examples for its reward, which only sets the label;
    with rewards arriving late, out of order or never, every distribution equals that of a
    policy that parses each example afresh."""
    pins = {"A": {"cost": -1.0}}
    keyed = VWPolicy(config, input_dim=16, pinned=pins)
    plain = VWPolicy(config, input_dim=16, pinned=pins)
    rng = np.random.default_rng(0)
    pending: list[tuple[object, dict, list, int, float, float]] = []
    for t in range(600):
        ctx = {"E": rng.standard_normal(16).astype(np.float32),
               "T": {"len": float(rng.random()), "code": 1.0}}
        acts = [{"M": {f"m{j}": 1.0}, "A": {"cost": float(rng.random() * 0.1),
                                            "quality": float(rng.random()), "latency": 0.0}}
                for j in range(int(rng.integers(2, 6)))]
        _, _, pmf, memo = keyed.decide(ctx, acts, draw=0.5)
        assert pmf == plain.decide(ctx, acts, draw=0.5).pmf, t
        i = int(rng.integers(len(acts)))
        pending.append((memo, ctx, acts, i, float(rng.random()) - 0.3, pmf[i]))
        if rng.random() < 0.3:  # some of the pending rewards arrive, in any order
            order = rng.permutation(len(pending)).tolist()
            arrived = order[: int(rng.integers(1, len(pending) + 1))]
            for k in arrived:
                memo, c, a, i, r, p = pending[k]
                keyed.learn(c, a, i, r, p, memo=memo)
                plain.learn(c, a, i, r, p)
            pending = [item for k, item in enumerate(pending) if k not in set(arrived)]
    assert 0 < len(keyed._parsed) <= 32  # never-rewarded decisions do not pile up
    keyed.close()
    plain.close()


def test_an_exploration_floor_keeps_every_model_in_play() -> None:
    plain, floored = VWPolicy(PolicyConfig(seed=2)), VWPolicy(
        PolicyConfig(seed=2, exploration_floor=0.13))
    acts = [{"M": {m: 1.0}} for m in "abcd"]
    for policy in (plain, floored):
        for _ in range(400):
            i, p = policy.predict({"T": {"x": 1.0}}, acts)
            policy.learn({"T": {"x": 1.0}}, acts, i, reward=float(i == 3), probability=p)
    base, pmf = plain.pmf({"T": {"x": 1.0}}, acts), floored.pmf({"T": {"x": 1.0}}, acts)
    assert min(base) < 0.13 / 4  # without the floor a loser is nearly dropped
    assert min(pmf) >= 0.13 / 4 - 1e-9 and sum(pmf) == pytest.approx(1.0)
    assert int(np.argmax(pmf)) == 3
    i, p, dist, _ = floored.decide({"T": {"x": 1.0}}, acts, draw=0.01)
    assert p == pytest.approx(dist[i])  # the logged probability is the mixture's


def test_examples_kept_for_rewards_are_given_back_when_the_policy_goes() -> None:
    """Parsed examples held for rewards that never came keep VW's memory alive; they are
    returned to their workspace on close(), on a model reload, and when the policy is
    garbage collected without either."""
    import gc

    acts = [{"M": {"a": 1.0}}, {"M": {"b": 1.0}}]
    policy = VWPolicy(PolicyConfig(seed=1))
    for k in range(10):
        policy.decide({"T": {f"t{k}": 1.0}}, acts)
    pending = policy._pending
    assert len(pending.examples) == 10
    policy.load_bytes(policy.to_bytes())
    assert not pending.examples and pending.vw is policy._vw
    policy.decide({"T": {"t": 1.0}}, acts)
    assert len(pending.examples) == 1
    del policy
    gc.collect()
    assert not pending.examples


def _stream(seed: int, n: int) -> list[tuple[dict, list[dict]]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ctx = {"E": rng.standard_normal(16).astype(np.float32), "T": {"x": float(rng.random())}}
        acts = [{"M": {f"m{j}": 1.0}, "A": {"cost": 0.05 * j, "quality": float(rng.random())}}
                for j in range(int(rng.integers(2, 6)))]
        out.append((ctx, acts))
    return out


def test_the_adapter_s_squarecb_decides_as_vw_s_own() -> None:
    """The adapter's squareCB (VW's regressor, the rule applied here) gives the distribution
    VW's own ``--squarecb`` gives on the same examples, decision for decision (float32 in VW,
    float64 here: equal to 1e-5)."""
    import vowpalwabbit

    config = PolicyConfig(exploration="squarecb", seed=4, gamma_scale=30)
    own = VWPolicy(config, input_dim=16)
    assert "--squarecb" not in own._vw.get_arguments()
    explore = "--cb_explore_adf --squarecb --gamma_scale 30 --gamma_exponent 0.5 --cb_type mtr"
    reference = vowpalwabbit.Workspace(
        config.vw_args().replace("--cb_adf --cb_type mtr", explore) + " --quiet")
    rng = np.random.default_rng(9)
    for t, (ctx, acts) in enumerate(_stream(3, 400)):
        draw = float(rng.random())
        i, p, pmf, memo = own.decide(ctx, acts, draw=draw)
        expected = reference.predict(own._example(ctx, acts))
        assert pmf == pytest.approx(expected, abs=1e-5), t
        reward = float(acts[i]["A"]["quality"] > 0.5) - acts[i]["A"]["cost"]
        own.learn(ctx, acts, i, reward, p, memo=memo)
        # squareCB's regression is not importance-weighted: the adapter learns with weight 1
        reference.learn(own._example(ctx, acts, (i, -reward, 1.0)))
    assert own._learned == 400
    own.close()
    reference.finish()


def test_optimism_retries_an_action_that_was_never_tried() -> None:
    """An action never tried keeps a large bonus: with a high gamma plain squareCB all but
    drops it, while with optimism it becomes the action to try; and the bonus is only used to
    decide: the regressor's predictions are the same either way."""
    ctx = {"T": {"x": 1.0}}
    acts = [{"M": {"tried": 1.0}}, {"M": {"never": 1.0}}]
    plain = VWPolicy(PolicyConfig(exploration="squarecb", seed=0, gamma_scale=200))
    hopeful = VWPolicy(PolicyConfig(exploration="squarecb", seed=0, gamma_scale=200, optimism=0.5))
    neutral = VWPolicy(PolicyConfig(exploration="squarecb", seed=0, gamma_scale=200, optimism=1e-9))
    for policy in (plain, hopeful, neutral):
        for _ in range(60):
            policy.learn(ctx, acts, 0, reward=0.6, probability=1.0)
    assert plain.pmf(ctx, acts)[1] < 0.01
    assert neutral.pmf(ctx, acts)[1] < 0.01
    assert hopeful.pmf(ctx, acts)[1] > 0.5
    # VW's predicted costs: the bonus never reached the regressor
    assert hopeful._scores(ctx, acts, None) == neutral._scores(ctx, acts, None)
    assert hopeful._optimism is not None and hopeful._optimism.counts == {("tried",): 60}


@pytest.mark.parametrize("strength", [0.0, 10.0])
def test_optimism_state_travels_with_the_model(strength: float) -> None:
    """The counts behind the bonus (and behind ``baseline_strength``) come back with the
    model: the reloaded policy decides the same."""
    config = PolicyConfig(exploration="squarecb",
                          seed=2, gamma_scale=50, optimism=0.2, baseline_strength=strength)
    baseline = {"A": {"quality": 1.0, "cost": -1.0}}
    first = VWPolicy(config, input_dim=16, baseline=baseline)
    for ctx, acts in _stream(1, 150):
        i, p, _, memo = first.decide(ctx, acts)
        first.learn(ctx, acts, i, acts[i]["A"]["quality"], p, memo=memo)
    data = first.to_bytes()
    second = VWPolicy(config, input_dim=16, baseline=baseline)
    second.load_bytes(data)
    assert second._learned == 150
    assert second._optimism is not None and first._optimism is not None
    assert second._optimism.counts == first._optimism.counts
    for ctx, acts in _stream(7, 20):
        assert second.pmf(ctx, acts) == pytest.approx(first.pmf(ctx, acts), abs=1e-9)
    with pytest.raises(ValueError, match="other exploration"):
        VWPolicy(PolicyConfig(seed=2), input_dim=16).load_bytes(data)
    with pytest.raises(ValueError, match="other exploration"):
        second.load_bytes(VWPolicy(PolicyConfig(seed=2), input_dim=16).to_bytes())


@pytest.mark.parametrize("head", [b"{}", b'{"learned": 7}', b'{"learned": -1, "counts": []}',
                                  b'{"learned": 3, "counts": [[["m"], 1.5]]}', b"not json",
                                  b'{"learned": 3, "counts": [[[1], 2]]}'])
def test_a_damaged_squarecb_state_is_refused_before_anything_changes(head: bytes) -> None:
    config = PolicyConfig(exploration="squarecb", seed=2, optimism=0.2)
    policy = VWPolicy(config)
    ctx, acts = {"T": {"x": 1.0}}, [{"M": {"a": 1.0}}, {"M": {"b": 1.0}}]
    for _ in range(5):
        policy.learn(ctx, acts, 1, 1.0, 0.5)
    before = policy.pmf(ctx, acts), policy._learned
    model = VWPolicy(config).to_bytes().split(b"\n", 2)[2]  # an untrained VW model
    with pytest.raises(ValueError, match="damaged squareCB state"):
        policy.load_bytes(b"bandit-router squarecb state\n" + head + b"\n" + model)
    assert (policy.pmf(ctx, acts), policy._learned) == before


def test_optimism_counts_actions_without_a_model_namespace_apart() -> None:
    policy = VWPolicy(PolicyConfig(exploration="squarecb", seed=0, optimism=0.2))
    ctx, acts = {"T": {"x": 1.0}}, [{"P": {"openai": 1.0}}, {"P": {"google": 1.0}}]
    policy.learn(ctx, acts, 0, 0.5, 1.0)
    policy.learn(ctx, acts, 1, 0.5, 1.0)
    policy.learn(ctx, acts, 5, 0.5, 1.0)  # no such action: not counted as learned
    assert policy._optimism is not None
    assert policy._optimism.counts == {("P:openai",): 1, ("P:google",): 1}
    assert policy._learned == 2


def test_squarecb_s_regressor_learns_from_stand_ins_as_from_every_action() -> None:
    """With ``optimism`` a reward is learned from the shared example, the chosen action's and
    featureless stand-ins for the others (VW predicts every action in the list before it
    trains on the chosen one): the model equals one that learned from every action's text,
    on both paths (a decision's kept examples, and text built anew)."""
    import vowpalwabbit

    config = PolicyConfig(exploration="squarecb", seed=4, optimism=0.2)
    policy = VWPolicy(config, input_dim=16)
    reference = vowpalwabbit.Workspace(config.vw_args() + " --quiet")
    stream = _stream(5, 300)
    for t, (ctx, acts) in enumerate(stream):
        i = t % len(acts)
        reward = float(acts[i]["A"]["quality"]) - acts[i]["A"]["cost"]
        if t % 2:
            memo = policy.decide(ctx, acts).memo
            policy.learn(ctx, acts, i, reward, 0.3, memo=memo)
        else:
            policy.learn(ctx, acts, i, reward, 0.3)
        reference.learn(policy._example(ctx, acts, (i, -reward, 1.0)))
    assert len(policy._blanks) == 4  # stand-ins for up to five actions, made once
    for ctx, acts in _stream(6, 30):
        expected = reference.predict(policy._example(ctx, acts))
        assert policy._scores(ctx, acts, None) == list(expected)
    reference.finish()
    policy.close()


def _neighbour_rounds(n: int) -> list[tuple[dict, list[dict], int, float]]:
    """Rounds whose best model depends on the neighbours' estimate ``Q:quality``: model ``a``
    pays it, model ``b`` pays its complement (one coefficient for both cannot say which)."""
    rng = np.random.default_rng(0)
    rounds = []
    for _ in range(n):
        q = float(rng.random())
        acts = [{"M": {m: 1.0}, "A": {"cost": 0.0, "quality": q},
                 "Q": {"quality": q, "evidence": 0.5}} for m in ("a", "b")]
        i = int(rng.integers(2))
        rounds.append(({"T": {"x": 1.0}}, acts, i, q if i == 0 else 1.0 - q))
    return rounds


def _without_q(actions: list[dict]) -> list[dict]:
    return [{ns: values for ns, values in a.items() if ns != "Q"} for a in actions]


def test_a_crossed_only_namespace_adds_nothing_without_its_interaction() -> None:
    rounds = _neighbour_rounds(300)
    # VW's regressor (its scores are predicted costs), and nothing crossed with Q
    config = PolicyConfig(exploration="squarecb", optimism=1e-6, interactions=("TM",))
    crossed = VWPolicy(config, crossed_only=("Q",))
    linear = VWPolicy(config)  # Q's features as plain linear terms
    without = VWPolicy(config)
    for ctx, acts, i, r in rounds:
        crossed.learn(ctx, acts, i, reward=r, probability=0.5)
        linear.learn(ctx, acts, i, reward=r, probability=0.5)
        without.learn(ctx, _without_q(acts), i, reward=r, probability=0.5)
    probe = rounds[0][1]
    bare = _without_q(probe)
    ctx = {"T": {"x": 1.0}}
    assert crossed._scores(ctx, probe, None) == without._scores(ctx, bare, None)
    assert linear._scores(ctx, probe, None) != without._scores(ctx, bare, None)


def test_a_crossed_only_namespace_is_learned_per_model_and_kept_by_a_reload() -> None:
    config = PolicyConfig(exploration="squarecb", optimism=1e-6, interactions=("TM", "QM"))
    rounds = _neighbour_rounds(2000)
    policy = VWPolicy(config, crossed_only=("Q",))
    half = VWPolicy(config, crossed_only=("Q",))
    for n, (ctx, acts, i, r) in enumerate(rounds):
        policy.learn(ctx, acts, i, reward=r, probability=0.5)
        if n < 1000:
            half.learn(ctx, acts, i, reward=r, probability=0.5)
    reloaded = VWPolicy(config, crossed_only=("Q",))
    reloaded.load_bytes(half.to_bytes())
    for ctx, acts, i, r in rounds[1000:]:  # learning goes on after the reload as before it
        reloaded.learn(ctx, acts, i, reward=r, probability=0.5)

    def acts(q: float) -> list[dict]:
        return [{"M": {m: 1.0}, "A": {"cost": 0.0, "quality": q},
                 "Q": {"quality": q, "evidence": 0.5}} for m in ("a", "b")]

    ctx = {"T": {"x": 1.0}}
    high, low = policy._scores(ctx, acts(0.9), None), policy._scores(ctx, acts(0.1), None)
    assert high[0] < high[1] - 0.5  # VW's costs: a where the neighbours rate it high,
    assert low[1] < low[0] - 0.5  # b where they rate it low
    for q in (0.1, 0.4, 0.9):
        assert np.allclose(reloaded._scores(ctx, acts(q), None),
                           policy._scores(ctx, acts(q), None), atol=1e-6)


@pytest.mark.parametrize("namespace", ["QM", "", "1", 7])
def test_crossed_only_names_single_namespace_letters(namespace: object) -> None:
    with pytest.raises(ValueError, match="one letter"):
        VWPolicy(crossed_only=(namespace,))  # type: ignore[arg-type]


def test_crossed_only_is_not_a_bare_str() -> None:
    with pytest.raises(ValueError, match="not a str"):
        VWPolicy(crossed_only="QM")  # a str is a sequence of letters: refused all the same


def test_a_model_seldom_learned_is_judged_by_its_baseline_until_it_is_learned() -> None:
    """With ``baseline_strength`` a model without rewards is predicted at its baseline (here
    ``B:prior``, which VW itself never sees), so a promising one is tried where plain
    squareCB leaves it at VW's shared-features guess, and an unpromising one is not; as its
    rewards come, VW's prediction takes over."""
    ctx = {"T": {"x": 1.0}}

    def acts(prior: float) -> list[dict]:
        return [{"M": {"tried": 1.0}, "B": {"prior": 0.5}},
                {"M": {"new": 1.0}, "B": {"prior": prior}}]

    def policy(strength: float) -> VWPolicy:
        made = VWPolicy(PolicyConfig(exploration="squarecb", seed=0, gamma_scale=200, optimism=1e-9,
                                     baseline_strength=strength),
                        crossed_only=("B",), baseline={"B": {"prior": 1.0}})
        for _ in range(60):
            made.learn(ctx, acts(0.9), 0, reward=0.5, probability=1.0)
        return made

    trusting, plain = policy(10.0), policy(0.0)
    assert plain.pmf(ctx, acts(0.9))[1] < 0.01
    assert trusting.pmf(ctx, acts(0.9))[1] > 0.5
    assert trusting.pmf(ctx, acts(0.1))[1] < 0.01
    # the regressor is the same: the baseline only enters the decision
    assert trusting._scores(ctx, acts(0.9), None) == plain._scores(ctx, acts(0.9), None)
    for _ in range(300):  # the new model turns out poor: VW's prediction wins
        trusting.learn(ctx, acts(0.9), 1, reward=0.2, probability=1.0)
    assert trusting.pmf(ctx, acts(0.9))[1] < 0.05


def test_the_baseline_is_read_from_the_action_s_features() -> None:
    """The baseline is the linear function of the action's features that ``baseline`` names:
    a feature an action lacks counts as 0, and with a baseline of its own a new model's
    predicted cost is exactly minus it."""
    policy = VWPolicy(PolicyConfig(exploration="squarecb",
                                   seed=0, optimism=1e-9, baseline_strength=5.0),
                      baseline={"A": {"quality": 1.0, "cost": -1.0}})
    acts = [{"M": {"a": 1.0}, "A": {"quality": 0.8, "cost": 0.3}}, {"M": {"b": 1.0}}]
    assert policy._baseline_costs(acts) == pytest.approx([-0.5, 0.0])


@pytest.mark.parametrize("baseline", [{"A": {"quality": float("nan")}}, {"A": {"q": "1"}},
                                      {"AB": {"quality": 1.0}}, {"A": 5}, [("A", 1.0)]])
def test_a_baseline_that_is_not_coefficients_of_features_is_refused(baseline: object) -> None:
    with pytest.raises(ValueError, match="baseline"):
        VWPolicy(PolicyConfig(seed=0), baseline=baseline)  # type: ignore[arg-type]


def test_baseline_strength_without_a_baseline_is_refused() -> None:
    """It would weigh nothing: refused rather than silently ignored."""
    with pytest.raises(ValueError, match="baseline"):
        VWPolicy(PolicyConfig(exploration="squarecb", seed=0, optimism=0.2, baseline_strength=10.0))
    VWPolicy(PolicyConfig(exploration="squarecb",
                          seed=0, optimism=0.2))  # without the strength, none is needed


def test_the_adapter_calls_vw_through_its_public_python_api_only() -> None:
    """No ``pylibvw`` (the native module under ``vowpalwabbit``) and no private attribute of a
    workspace or an example: what VW's next minor release may rename."""
    import ast
    import inspect

    from bandit_router.core.policies import _vw

    tree = ast.parse(inspect.getsource(_vw))
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    imported = {alias.name for node in imports for alias in node.names}
    imported |= {node.module for node in imports
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name for name in imported if "pylibvw" in name}
    private = sorted({ast.unparse(node) for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                      and not node.attr.startswith("__")
                      and ast.unparse(node.value) in {"self._vw", "self.vw", "vowpalwabbit",
                                                      "workspace", "chosen", "blank"}})
    assert private == []
