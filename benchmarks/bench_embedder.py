"""The embedding model's speed, memory and fidelity, by runtime.

all-MiniLM-L6-v2 three ways: torch through sentence-transformers (``minilm-torch``), ONNX
Runtime with the float32 export (``minilm``, the default) and with int8 weights
(``minilm-int8``; it embeds each text alone, so its batches are no faster). Each runs in a
process of its own (so its memory is its own):

- load: seconds from nothing to ready, with the ONNX export already kept (the first start
  exports once; that time is measured apart, into an empty cache);
- resident memory once loaded, and after embedding;
- one short prompt at a time (the ``select()`` path: distinct prompts, no cache), p50/p99;
- short prompts in batches of 64 (the service's batching embedder under load), prompts/s;
- fidelity: the cosine of each vector to torch's, on the short prompts and, when the data is
  there (``BANDIT_ROUTER_DATA``), on 500 MMLU-Pro questions (long: cut at 256 word pieces).

Writes ``benchmarks/results/embedder.json``; ``scripts/bench_doc.py`` renders its table.

    .venv/bin/python benchmarks/bench_embedder.py [--n 500] [--threads N] [--out PATH]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import machine, percentiles, prompts, rss_mb, write_json

KINDS = ("minilm-torch", "minilm", "minilm-int8")


def long_prompts(n: int) -> list[str]:
    from bandit_router.eval.datasets import default_data_dir, load_mmlu_pro

    if not (default_data_dir() / "mmlu_pro").is_dir():
        return []
    texts = load_mmlu_pro().texts
    rng = np.random.default_rng(0)
    return [texts[i] for i in rng.choice(len(texts), n, replace=False)]


def measure(job: tuple[str, int, int | None]) -> dict[str, Any]:
    """One runtime's figures, in a fresh process; vectors come back for the fidelity."""
    kind, n, threads = job
    from bandit_router import OnnxEmbedder, make_embedder

    start_rss = rss_mb()
    embedder = (OnnxEmbedder(quantize=kind == "minilm-int8", threads=threads)
                if kind != "minilm-torch" else make_embedder(kind))
    t = time.perf_counter()
    embedder.embed(["warm up"])  # loads
    load_s = time.perf_counter() - t
    loaded_rss = rss_mb()
    singles = prompts(n, seed=1)
    ms = []
    for text in singles:
        t = time.perf_counter()
        embedder.embed([text])
        ms.append(1000 * (time.perf_counter() - t))
    batch = prompts(640, seed=2)
    t = time.perf_counter()
    for i in range(0, len(batch), 64):
        embedder.embed(batch[i:i + 64])
    batch_s = time.perf_counter() - t
    fidelity = prompts(200, seed=3)
    return {"kind": kind, "name": embedder.name, "load_s": load_s,
            "rss_mb": {"start": start_rss, "loaded": loaded_rss, "end": rss_mb()},
            "single_ms": percentiles(ms), "batch64_per_s": len(batch) / batch_s,
            "vectors_short": embedder.embed(fidelity).tolist(),
            "vectors_long": embedder.embed(long_prompts(500)).tolist()}


def export_seconds(quantize: bool) -> float:
    """The first start's export, into an empty cache."""
    from bandit_router import OnnxEmbedder

    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        OnnxEmbedder(quantize=quantize, cache=cache).load()
        return time.perf_counter() - t


def cosines(a: list[list[float]], b: list[list[float]]) -> dict[str, float] | None:
    if not a:
        return None
    c = (np.asarray(a) * np.asarray(b)).sum(axis=1)
    return {"min": float(c.min()), "p1": float(np.percentile(c, 1)), "mean": float(c.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="single prompts timed per runtime")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime threads per call (default: its own choice)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "embedder.json"))
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(args), "runs": []}
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1, maxtasksperchild=1) as pool:  # one process per runtime, one at a time
        export = {"minilm": pool.apply(export_seconds, (False,)),
                  "minilm-int8": pool.apply(export_seconds, (True,))}
        runs = [pool.apply(measure, ((kind, args.n, args.threads),)) for kind in KINDS]
    torch = runs[0]
    print(f"{'embedder':14} {'load s':>7} {'export s':>8} {'RSS MB':>7} {'single p50/p99 ms':>18} "
          f"{'batch/s':>8} {'cos short':>10} {'cos MMLU-Pro min/mean':>22}")
    for run in runs:
        row = {k: v for k, v in run.items() if not k.startswith("vectors")}
        row["export_s"] = export.get(run["kind"])
        row["cosine_short"] = cosines(run["vectors_short"], torch["vectors_short"])
        row["cosine_mmlu_pro"] = cosines(run["vectors_long"], torch["vectors_long"])
        result["runs"].append(row)
        long = row["cosine_mmlu_pro"]
        exported = "" if row["export_s"] is None else f"{row['export_s']:.1f}"
        fidelity = "" if long is None else f"{long['min']:.4f} / {long['mean']:.4f}"
        print(f"{row['kind']:14} {row['load_s']:7.2f} {exported:>8} "
              f"{row['rss_mb']['end']:7.0f} "
              f"{row['single_ms']['p50']:8.2f} /{row['single_ms']['p99']:7.2f} "
              f"{row['batch64_per_s']:8.0f} {row['cosine_short']['min']:10.4f} "
              f"{fidelity:>22}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
