"""The ``bandit-router`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .core._config import EXPLORATIONS, PolicyConfig, RouterConfig, implied_exploration
from .core._objective import Objective
from .eval.simulation import HashEmbedder, SyntheticWorkload, Task, demo_catalog
from .router._router import Router

if TYPE_CHECKING:
    from .eval.datasets import RoutingDataset

__all__ = ["main"]


@dataclass
class _Tally:
    quality: float = 0.0
    cost: float = 0.0
    reward: float = 0.0
    n: int = 0
    picks: Counter[str] = field(default_factory=Counter)

    def add(self, quality: float, cost: float, cost_weight: float, key: str) -> None:
        self.quality += quality
        self.cost += cost
        self.reward += Objective(cost_weight).reward(quality, cost)
        self.n += 1
        self.picks[key] += 1

    def row(self) -> str:
        n = max(self.n, 1)
        return f"{self.quality / n:7.3f} {1e6 * self.cost / n:9.1f} {self.reward / n:7.3f}"


def _demo(args: argparse.Namespace) -> int:
    from .core._errors import InvalidInputError

    if args.report_every < 1:
        print("bandit-router demo: --report-every must be >= 1", file=sys.stderr)
        return 2
    try:  # the library's checks, before any work: the seed, the cost weight
        policy = PolicyConfig(seed=args.seed)
        config = RouterConfig(cost_weight=args.cost_weight)
    except InvalidInputError as exc:
        print(f"bandit-router demo: {exc}", file=sys.stderr)
        return 2
    workload = SyntheticWorkload(seed=args.seed)
    baselines = SyntheticWorkload(seed=args.seed + 1)  # own noise for the fixed strategies
    tmp = None
    url = args.database_url
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="bandit-router-demo-")
        url = f"sqlite:///{os.path.join(tmp.name, 'demo.db')}"
    embedder = HashEmbedder() if args.fast else None
    print(f"bandit-router demo: {args.rounds} simulated requests, cost weight "
          f"{args.cost_weight:g}/USD, embedder "
          f"{'hash (fast)' if args.fast else 'all-MiniLM-L6-v2'}, database {url}")
    print("loading the embedder and the policy ...", flush=True)
    try:
        router = Router(database_url=url, catalog=demo_catalog(), embedder=embedder,
                        policy=policy, config=config)
    except InvalidInputError as exc:  # a database URL it cannot use
        print(f"bandit-router demo: {exc}", file=sys.stderr)
        if tmp is not None:
            tmp.cleanup()
        return 2
    # named events: every exploration draw follows from the seed and the round, so one seed
    # gives one result (a database given by the user gets a fresh run id, so reruns do not
    # collide with its earlier events)
    run = f"s{args.seed}" if tmp is not None else f"s{args.seed}-{uuid.uuid4().hex[:8]}"
    lam = args.cost_weight
    strongest, cheapest = workload.strongest, workload.cheapest
    print(f"strongest model: {strongest}; cheapest: {cheapest}\n")
    header = (f"{'rounds':>11} | {'router: quality  $/1M req  reward':>33} | "
              f"{'always-strongest':>33} | {'always-cheapest':>33}")
    print(header)
    print("-" * len(header))
    totals = [_Tally(), _Tally(), _Tally()]
    window = [_Tally(), _Tally(), _Tally()]
    per_topic: dict[str, Counter[str]] = {}
    start = 1
    try:
        for i in range(1, args.rounds + 1):
            task: Task = workload.sample_task()
            decision = router.select(task.text, event_id=f"demo-{run}-{i}")
            key = f"{decision.provider}/{decision.model}"
            out = workload.outcome(task, key)
            router.reward(decision.event_id, quality=out.quality, cost_usd=out.cost_usd,
                          latency_s=out.latency_s, output_tokens=out.output_tokens)
            per_topic.setdefault(task.topic, Counter())[key] += 1
            for tally in (totals[0], window[0]):
                tally.add(out.quality, out.cost_usd, lam, key)
            for j, fixed in ((1, strongest), (2, cheapest)):
                o = baselines.outcome(task, fixed)
                for tally in (totals[j], window[j]):
                    tally.add(o.quality, o.cost_usd, lam, fixed)
            if i % args.report_every == 0 or i == args.rounds:
                print(f"{start:>5}-{i:<5} | {window[0].row():>33} | {window[1].row():>33} | "
                      f"{window[2].row():>33}")
                share = ", ".join(f"{k.split('/')[1]} {100 * c / window[0].n:.0f}%"
                                  for k, c in window[0].picks.most_common())
                print(f"{'':>11}   traffic: {share}")
                window = [_Tally(), _Tally(), _Tally()]
                start = i + 1
        print("-" * len(header))
        print(f"{'all':>11} | {totals[0].row():>33} | {totals[1].row():>33} | "
              f"{totals[2].row():>33}")
        stats = router.get_routing_stats()
        print(f"\nrouter spend ${stats['spend_usd']:.4f} vs always-{strongest} "
              f"${totals[1].cost:.4f}: {100 * (1 - totals[0].cost / totals[1].cost):.1f}% saved, "
              f"{100 * totals[0].quality / totals[1].quality:.1f}% of its quality kept")
        print("\nper topic, the router's most frequent pick (last choices dominate) "
              "against the best model for this cost weight:")
        for topic, picks in sorted(per_topic.items()):
            top, count = picks.most_common(1)[0]
            best = workload.best_model(topic, lam)
            mark = "ok" if top == best else "  "
            pct = 100 * count / sum(picks.values())
            print(f"  {mark} {topic:<12} router: {top:<20} {pct:4.0f}%   best: {best}")
    finally:
        router.close()
        if tmp is not None:
            tmp.cleanup()
    return 0


def _load_dataset(spec: str, limit: int | None) -> RoutingDataset:
    from pathlib import Path

    from .eval.datasets import default_data_dir, load_mmlu_pro, load_table

    if spec == "mmlu_pro" or Path(spec).name == "mmlu_pro":
        path = default_data_dir() / "mmlu_pro" if spec == "mmlu_pro" else Path(spec)
        return load_mmlu_pro(path, limit=limit)
    if spec == "synthetic":
        from .eval.datasets import synthetic_dataset

        return synthetic_dataset(limit or 3000)
    return load_table(spec, limit=limit)


def _replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .core._errors import InvalidInputError
    from .eval.replay import replay

    # squareCB's own options mean squareCB unless another exploration is named
    exploration = implied_exploration(args.exploration, optimism=args.optimism,
                                      baseline_strength=args.baseline_strength)
    try:
        policy = PolicyConfig(exploration=exploration, seed=args.seed,
                              gamma_scale=args.gamma_scale, embedding_dims=args.embedding_dims,
                              optimism=args.optimism,
                              baseline_strength=args.baseline_strength,
                              interactions=tuple(args.interactions))
    except InvalidInputError as exc:
        print(f"bandit-router replay: {exc}", file=sys.stderr)
        return 2
    if args.log and not Path(args.log).resolve().parent.is_dir():  # before a long replay
        print(f"bandit-router replay: cannot write the per-round log {args.log}: its folder "
              "does not exist", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print(f"bandit-router replay: --limit must be at least 1 task, not {args.limit}",
              file=sys.stderr)
        return 2
    # --limit is a seeded random sample of the tasks (replay's order), not the file's first
    # rows: files are often sorted by task family
    try:
        dataset = _load_dataset(args.dataset,
                                args.limit if args.dataset == "synthetic" else None)
    except (InvalidInputError, OSError) as exc:  # (a missing file: OSError)
        print(f"bandit-router replay: {exc}", file=sys.stderr)
        return 2
    if dataset.dropped:
        print(f"{dataset.dropped} task(s) dropped: some model has no score or cost on them")
    embedder = None
    if args.embed:  # the router's own MiniLM instead of the dataset's precomputed vectors
        from .core._onnx import make_embedder

        embedder = make_embedder()
    elif dataset.embeddings is None and args.limit is None:
        # every task will be routed: embed them ahead with the router's own embedder and
        # keep the vectors under $BANDIT_ROUTER_CACHE, so that the next replay of the table
        # (another seed, another weight) skips the embedding, most of a round's time
        from .eval.protocol import cache_dir, with_embeddings

        print(f"embedding {len(dataset):,} tasks ahead (cached in {cache_dir()})", flush=True)
        dataset = with_embeddings(dataset)
    print(f"replaying {dataset.name}: {len(dataset)} tasks x {len(dataset.models)} models, "
          f"cost weight {args.cost_weight:g}/USD, exploration {exploration}, "
          f"seed {args.seed}; bandit feedback only")
    if 0.0 < args.warm_start < 1.0:
        print(f"warm start: {round(args.warm_start * len(dataset)):,} tasks (a seeded "
              "sample) given first with every model's outcome; the rest replayed")
    try:
        result = replay(dataset, seed=args.seed, cost_weight=args.cost_weight,
                        embedder=embedder, policy=policy, limit=args.limit,
                        warm_start=args.warm_start)
    except InvalidInputError as exc:
        print(f"bandit-router replay: {exc}", file=sys.stderr)
        return 2
    n = len(result.order)
    for label, part in (("whole stream", slice(None)), ("last half", slice(n // 2, None))):
        s = result.summary(part)
        print(f"\n{label} ({s['metrics']['rounds']} rounds)")
        print(f"  {'strategy':<42} {'quality':>8} {'$/1k req':>10} {'reward':>8}")
        names = ["router", "bandit without context", "random", "cheapest", "strongest",
                 "oracle"]
        names += sorted(k for k in s if k.startswith("always ")) if args.all_models else []
        for name in names:
            v = s[name]
            print(f"  {name:<42} {v['quality']:8.3f} {1000 * v['cost']:10.4f} "
                  f"{v['reward']:8.3f}")
        m = s["metrics"]
        quality, share = m["share_of_strongest_quality"], m["share_of_strongest_cost"]
        spent = (f"{100 * share:.1f}% of its cost" if share is not None
                 else "no cost" if s["router"]["cost"] == 0  # (a table without prices)
                 else f"${1000 * s['router']['cost']:.4f}/1k requests, the strongest nothing")
        print("  router: " + (f"{100 * quality:.1f}% of the strongest's quality"
                              if quality is not None else "quality 0, as every model's")
              + f" at {spent}; "
              f"zero router at that cost {m['zero_router_quality_at_same_cost']:.3f} "
              f"({m['above_zero_router']:+.3f}); regret/round {m['regret_per_round']:.4f}")
    print(f"\n{result.rounds_per_s:.0f} rounds/s")
    if args.log:
        result.write_log(args.log)
        print(f"per-round log: {args.log}")
    return 0


README_START = "<!-- quality-table:start (bandit-router bench quality --readme) -->"
README_END = "<!-- quality-table:end -->"


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .core._errors import InvalidInputError
    from .eval import protocol

    if args.from_json is not None:
        if args.table:
            print("bandit-router bench: --from-json prints an earlier result; --table runs "
                  "one: give one of them", file=sys.stderr)
            return 2
        result = protocol.load_json(args.from_json)
    else:
        try:
            policy, router = protocol.settings_from(args.set)
            weights = {}
            for item in args.cost_weights:
                name, _, values = item.partition("=")
                weights[name] = [float(v) for v in values.split(",") if v]
        except (InvalidInputError, ValueError) as exc:
            print(f"bandit-router bench: {exc}", file=sys.stderr)
            return 2
        try:  # your own tables: only they run, with the workloads named beside them
            tables = [protocol.table_workload(p) for p in args.table]
        except InvalidInputError as exc:
            print(f"bandit-router bench: {exc}", file=sys.stderr)
            return 2
        found = (protocol.variant_workloads if args.variants
                 else protocol.workloads)(data_dir=args.data)
        names = [w.name for w in found]
        unknown = [n for n in args.workloads or []
                   if n not in names and n not in {t.name for t in tables}]
        if unknown:
            print(f"bandit-router bench: no workload {unknown} here (found: {names})",
                  file=sys.stderr)
            return 2
        chosen = tables + [w for w in found if (not args.workloads and not tables)
                           or w.name in (args.workloads or [])]
        seeds = args.seeds or list(protocol.DEV_SEEDS if args.dev else protocol.REPORT_SEEDS)
        try:
            result = protocol.run_protocol(
                chosen, seeds=seeds, policy=policy, router=router, cost_weights=weights,
                jobs=args.jobs, progress=lambda msg: print(msg, flush=True))
        except InvalidInputError as exc:
            print(f"bandit-router bench: {exc}", file=sys.stderr)
            return 2
        if args.out:
            protocol.write_json(result, args.out)
            print(f"results written to {args.out}")
    print(protocol.format_table(result))
    if args.readme:
        path = Path(args.readme)
        text = path.read_text()
        if README_START not in text or README_END not in text:
            print(f"bandit-router bench: {path} has no {README_START} ... {README_END} block",
                  file=sys.stderr)
            return 2
        head, rest = text.split(README_START, 1)
        tail = rest.split(README_END, 1)[1]
        path.write_text(f"{head}{README_START}\n{protocol.render_markdown(result)}"
                        f"{README_END}{tail}")
        print(f"table written into {path}")
    return 0 if all(c["met"] for c in result["targets"]) or not args.strict else 1


def build_parser(extend: Callable[[Any], None] | None = None) -> argparse.ArgumentParser:
    """The library's commands (demo, replay, bench); ``extend`` adds more to the subparsers
    (the service's ``serve``, ``keys`` and ``report``: :mod:`feedback_api.cli`)."""
    parser = argparse.ArgumentParser(prog="bandit-router",
                                     description="Self-hosted LLM router that learns online.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="stream a simulated workload through the real router")
    demo.add_argument("--rounds", type=int, default=3000)
    demo.add_argument("--cost-weight", type=float, default=50.0,
                      help="quality points per US dollar (default: 50)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--report-every", type=int, default=500)
    demo.add_argument("--database-url", default=None,
                      help="SQLAlchemy URL (default: a temporary SQLite file)")
    demo.add_argument("--fast", action="store_true",
                      help="use a hashing embedder instead of all-MiniLM-L6-v2")
    demo.set_defaults(func=_demo)

    rp = sub.add_parser("replay", help="replay a routing dataset through the router with "
                                       "bandit feedback, against baselines")
    rp.add_argument("dataset", help="'mmlu_pro' (from $BANDIT_ROUTER_DATA, default "
                                    "../shared/data), 'synthetic', or a JSONL/CSV log or "
                                    "RouterBench table")
    rp.add_argument("--cost-weight", type=float, default=20.0)
    rp.add_argument("--exploration", choices=list(EXPLORATIONS), default=None,
                    help=f"default: {PolicyConfig().exploration}; squarecb when one of its "
                         "options (--optimism, --baseline-strength) is given")
    rp.add_argument("--gamma-scale", type=float, default=PolicyConfig().gamma_scale,
                    help="squareCB: higher explores less")
    rp.add_argument("--embedding-dims", type=int, default=None,
                    help="random projection of the embedding the policy sees")
    rp.add_argument("--optimism", type=float, default=PolicyConfig().optimism,
                    help="squareCB: decision-time bonus for models tried less (e.g. 0.2)")
    rp.add_argument("--baseline-strength", type=float,
                    default=PolicyConfig().baseline_strength,
                    help="with --optimism: rewards of a model after which VW's prediction and "
                         "its neighbours' estimate weigh the same (e.g. 10)")
    rp.add_argument("--interactions", nargs="+", default=list(PolicyConfig().interactions),
                    help="VW's namespace pairs (QM: each model learns how "
                         "far to trust its neighbours' estimate)")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--limit", type=int, default=None,
                    help="replay a seeded random sample of this many tasks")
    rp.add_argument("--warm-start", type=float, default=0.0, metavar="SHARE",
                    help="give this share of the tasks (a seeded sample) to the router first "
                         "with every model's outcome (labelled history), then replay the "
                         "rest; --limit caps the replayed ones")
    rp.add_argument("--embed", action="store_true",
                    help="embed with the router's MiniLM, not the dataset's vectors")
    rp.add_argument("--all-models", action="store_true", help="print every single model")
    rp.add_argument("--log", default=None, help="write the per-round log (CSV) here")
    rp.set_defaults(func=_replay)

    bench = sub.add_parser("bench", help="benchmarks: 'quality' replays every workload it "
                                         "finds x cost weights x seeds")
    bsub = bench.add_subparsers(dest="which", required=True)
    quality = bsub.add_parser(
        "quality", help="the quality protocol: one table, JSON, each workload's targets")
    quality.add_argument("--workloads", nargs="+", default=None,
                         help="run only these (default: every one whose data is present)")
    quality.add_argument("--seeds", type=int, nargs="+", default=None,
                         help="default: the report seeds 100 101 102")
    quality.add_argument("--variants", action="store_true",
                         help="the variant workloads instead (shapes no default was chosen "
                              "on: MMLU-Pro among 5 of its models and among all 19 priced "
                              "ones, RouterDC-7 priced 1x-64x, short streams of both)")
    quality.add_argument("--table", action="append", default=[], metavar="FILE",
                         help="a routing table of your own (RouterBench's format, or a "
                              "JSONL/CSV log with every model's outcome per task), replayed "
                              "instead of the built-in workloads and held to the held-out "
                              "bar; named after its file (repeatable)")
    quality.add_argument("--dev", action="store_true",
                         help="the development seeds 0-5 (choose settings on these)")
    quality.add_argument("--set", action="append", default=[], metavar="policy.F=V",
                         help="override a PolicyConfig or RouterConfig field, e.g. "
                              "policy.gamma_scale=400 or router.neighbours=64 (repeatable)")
    quality.add_argument("--cost-weights", action="append", default=[],
                         metavar="WORKLOAD=W1,W2", help="another grid for one workload")
    quality.add_argument("--data", default=None,
                         help="data folder (default: $BANDIT_ROUTER_DATA or ../shared/data)")
    quality.add_argument("--jobs", type=int, default=1,
                         help="replays at once, in forked processes (rounds/s is then per "
                              "process on a shared machine)")
    quality.add_argument("--out", default=None, metavar="FILE.json", help="write the JSON here")
    quality.add_argument("--from-json", default=None, metavar="FILE.json",
                         help="print (and with --readme, render) an earlier result instead")
    quality.add_argument("--readme", default=None, metavar="README.md",
                         help="rewrite the quality table between its markers in this file")
    quality.add_argument("--strict", action="store_true",
                         help="exit 1 when a target is missed")
    bench.set_defaults(func=_bench)
    if extend is not None:
        extend(sub)
    return parser


def main(argv: Sequence[str] | None = None, *,
         extend: Callable[[Any], None] | None = None) -> int:
    """Run a command (``extend``: see :func:`build_parser`)."""
    args = build_parser(extend).parse_args(argv)
    if getattr(args, "rounds", 1) < 1:
        print("--rounds must be >= 1", file=sys.stderr)
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
