"""The MMLU-Pro replay: issue #4's table, on the shared data.

The 13 priced chat models, the 10,225 questions all of them answered, one pass in a seeded
random order, bandit feedback only, the dataset's all-MiniLM-L6-v2 vectors (stored as float16;
``--embed`` embeds every question with the router's own embedder first, float32, and
``--embeddings-cache FILE.npy`` keeps those between runs). For each cost weight and seed:
quality and cost over the
last half and over the whole stream, against always-gpt-4o and the zero router's hull.

    BANDIT_ROUTER_DATA=../shared/data .venv/bin/python benchmarks/bench_replay_mmlu.py \\
        [--cost-weights 10 20 50 100] [--seeds 0 1 2] [--limit N] [--gamma-scale 30] \\
        [--embedding-dims 64] [--task-clusters 4 16] [--optimism 0.2] \\
        [--baseline-strength 10] [--jobs 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
from dataclasses import replace
from pathlib import Path

import numpy as np

from bandit_router import Exploration, PolicyConfig, RouterConfig, implied_exploration
from bandit_router.eval.baselines import aiq, knn_greedy, supervised
from bandit_router.eval.datasets import RoutingDataset, default_data_dir, load_mmlu_pro
from bandit_router.eval.replay import replay, zero_router_hull

GPT4O = "always gpt-4o-2024-05-13"



def _exploration(args: argparse.Namespace) -> Exploration:
    """squareCB when one of its options is given, else the default (the library's rule)."""
    return implied_exploration(None, optimism=args.optimism,
                               baseline_strength=args.baseline_strength)


def router_vectors(texts: list[str], cache: Path | None) -> np.ndarray:
    """``texts`` embedded by the router's default embedder (all-MiniLM-L6-v2, float32)."""
    if cache is not None and cache.exists():
        vectors = np.load(cache)
        if vectors.shape[0] == len(texts):
            return np.asarray(vectors, np.float32)
    from bandit_router import SentenceTransformerEmbedder

    vectors = np.asarray(SentenceTransformerEmbedder().embed(texts), np.float32)
    if cache is not None:
        np.save(cache, vectors)
    return vectors


#: The dataset, set before worker processes fork (so they inherit it instead of receiving a
#: copy per job).
_DATASET: list[RoutingDataset] = []


def one_replay(job: tuple[argparse.Namespace, float, int]
               ) -> tuple[tuple[float, ...], dict[str, tuple[float, float]]]:
    """One seed at one cost weight: the router's row of the table, and each curve's point."""
    args, lam, seed = job
    ds = _DATASET[0]
    r = replay(ds, seed=seed, cost_weight=lam, limit=args.limit, warm_start=args.warm_start,
               policy=PolicyConfig(seed=seed, exploration=_exploration(args),
                                   gamma_scale=args.gamma_scale,
                                   embedding_dims=args.embedding_dims,
                                   optimism=args.optimism,
                                   baseline_strength=args.baseline_strength,
                                   interactions=tuple(args.interactions)),
               config=RouterConfig(task_clusters=tuple(args.task_clusters)))
    n = len(r.order)
    half, whole = r.summary(slice(n // 2, None)), r.summary()
    knn_order, knn_chosen = knn_greedy(ds, seed=seed, cost_weight=lam)
    tail = slice(len(knn_order) // 2, None)
    perm = np.random.default_rng(seed).permutation(len(ds))
    train, test = perm[: int(0.8 * len(ds))], perm[int(0.8 * len(ds)):]
    picks = supervised(ds, train, test, cost_weight=lam)
    points = {
        "router": (half["router"]["cost"], half["router"]["quality"]),
        "kNN-greedy": (float(ds.cost[knn_order, knn_chosen][tail].mean()),
                       float(ds.quality[knn_order, knn_chosen][tail].mean())),
        "supervised (80% full info)": (float(ds.cost[test, picks].mean()),
                                       float(ds.quality[test, picks].mean()))}
    row = (half["router"]["quality"], half["router"]["cost"] / half[GPT4O]["cost"],
           half["metrics"]["above_zero_router"], whole["router"]["quality"],
           whole["router"]["cost"] / whole[GPT4O]["cost"], r.rounds_per_s)
    return row, points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cost-weights", type=float, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--embed", action="store_true",
                        help="embed the questions with the router's own MiniLM embedder first")
    parser.add_argument("--embeddings-cache", type=Path, default=None,
                        help="with --embed: a .npy file to read those vectors from, or write")
    parser.add_argument("--gamma-scale", type=float, default=PolicyConfig().gamma_scale,
                        help="squareCB's gamma_scale (higher: less exploration)")
    parser.add_argument("--baseline-strength", type=float,
                        default=PolicyConfig().baseline_strength,
                        help="with --optimism: rewards of a model after which VW's prediction "
                             "and the neighbours' estimate weigh the same (e.g. 10)")
    parser.add_argument("--optimism", type=float, default=PolicyConfig().optimism,
                        help="squareCB's decision-time bonus for models tried less")
    parser.add_argument("--embedding-dims", type=int, default=PolicyConfig().embedding_dims,
                        help="random projection of the embedding the policy sees")
    parser.add_argument("--interactions", nargs="+", default=list(PolicyConfig().interactions),
                        help="VW's namespace pairs (QM: each model's own trust in its "
                             "neighbours' estimate)")
    parser.add_argument("--task-clusters", type=int, nargs="*",
                        default=list(RouterConfig().task_clusters),
                        help="k-means codebook sizes (none: no clusters)")
    parser.add_argument("--warm-start", type=float, default=0.0,
                        help="share of questions given with every model's outcome first")
    parser.add_argument("--jobs", type=int, default=1,
                        help="replays run at once, in forked worker processes (rounds/s is "
                             "then per process, on a shared machine; run with "
                             "OMP_NUM_THREADS=1, and with --embed embed once first with "
                             "--embeddings-cache)")
    args = parser.parse_args()
    ds = load_mmlu_pro(default_data_dir() / "mmlu_pro")
    if args.embed:  # once, in batches: what the router's embedder gives each question
        ds = replace(ds, embeddings=router_vectors(ds.texts, args.embeddings_cache))
    source = ("MiniLM float32 from the router's embedder" if args.embed
              else "the dataset's MiniLM vectors (float16)")
    print(f"MMLU-Pro replay: {len(ds)} questions x {len(ds.models)} models, "
          f"seeds {args.seeds}, {source}, "
          f"squareCB gamma_scale {args.gamma_scale:g}"
          f"{f', optimism {args.optimism:g}' if args.optimism else ''}"
          f"{f', baseline strength {args.baseline_strength:g}' if args.baseline_strength else ''}"
          f", embedding dims "
          f"{args.embedding_dims or 'all'}, interactions {' '.join(args.interactions)}, "
          f"task clusters {tuple(args.task_clusters)}")
    print(f"{'λ/USD':>7} | {'last half: quality':>18} {'% gpt-4o $':>10} {'vs hull':>8} | "
          f"{'whole: quality':>14} {'% gpt-4o $':>10} | rounds/s | "
          "per seed: last half quality@cost (vs hull)")
    curves: dict[str, list[tuple[float, float]]] = {"router": [], "kNN-greedy": [],
                                                     "supervised (80% full info)": []}
    _DATASET[:] = [ds]
    jobs = [(args, lam, seed) for lam in args.cost_weights for seed in args.seeds]
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            results = pool.map(one_replay, jobs, chunksize=1)
    else:
        results = [one_replay(job) for job in jobs]
    for lam in args.cost_weights:
        mine = [r for (_, weight, _), r in zip(jobs, results, strict=True) if weight == lam]
        for _row, points in mine:
            for name, point in points.items():
                curves[name].append(point)
        m = np.mean([row for row, _ in mine], axis=0)
        per_seed = " ".join(f"{row[0]:.3f}@{100 * row[1]:.1f}%({row[2]:+.3f})"
                            for row, _ in mine)
        print(f"{lam:>7g} | {m[0]:>18.3f} {100 * m[1]:>9.1f}% {m[2]:>+8.3f} | "
              f"{m[3]:>14.3f} {100 * m[4]:>9.1f}% | {m[5]:>8.0f} | {per_seed}")
    print("\nreference: always gpt-4o 0.731 at 100%; gemini-1.5-pro alone 0.717 at 9.6%; "
          "oracle 0.923 at 2.4%")
    singles = list(zip(ds.cost.mean(axis=0), ds.quality.mean(axis=0), strict=True))
    low, high = min(c for c, _ in singles), max(c for c, _ in singles)
    zero = aiq(zero_router_hull(*zip(*singles, strict=True)), low=low, high=high)
    print(f"\nAIQ over ${low:.6f}-${high:.6f} per question (mean quality of the cost-quality "
          f"hull); zero router {zero:.4f}")
    for name, curve in curves.items():
        value = aiq(curve, low=low, high=high)
        print(f"  {name:<28} {value:.4f} ({value - zero:+.4f} vs zero router); points: "
              + ", ".join(f"({100 * c / high:.1f}% cost, {q:.3f})" for c, q in curve))


if __name__ == "__main__":
    main()
