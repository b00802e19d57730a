"""Learning from the reward log: catch-up, checkpoints, restore and expiry.

The reward table is the source of truth. A router's state is "everything learned up to reward
``seq``": the policy and the FAISS memory (and, once fitted, the task-cluster codebooks, which
are stored on their own and never change, see ``_clusters``). Learning means reading the log
after that ``seq`` in order, so the same code serves a live reward, a restart, a rebuild after
a corrupt checkpoint, and a replica catching up with rewards another process wrote.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, dataclass, fields
from typing import Any

import numpy as np
import orjson

from . import _namespaces as ns
from . import _pages
from ._catalog import ModelSpec
from ._clusters import TaskClusters
from ._config import PolicyConfig, RouterConfig
from ._constraints import Estimate
from ._memory import Memory, MemoryCopy
from ._pages import Page, PageReader, pages_due
from ._scoring import estimates, logged_action
from ._store import CheckpointRow, ClusterRow, EventRow, LearnItem, RewardRow, Store
from .policies import Policy, VWPolicy

__all__ = ["Learner", "write_checkpoint"]

log = logging.getLogger("bandit_router")


#: Distinct tasks per cluster of the largest codebook that are enough to fit the codebooks
#: once the memory holds ``cluster_after`` tasks: templated traffic repeats its tasks, and
#: waiting for ``cluster_after`` distinct ones left it without clusters for thousands of rounds.
_TASKS_PER_CLUSTER = 20
#: The checkpoint format: 2 writes a manifest of what the checkpoint was written with (format
#: 1 had only the hash of it, which :func:`_legacy_settings` still computes for old rows).
CHECKPOINT_FORMAT = 2


def _decision_only(f: Field[Any]) -> bool:
    return bool(f.metadata.get("decision_only"))


def _legacy_settings(config: PolicyConfig) -> str:
    """Format 1's identity of the settings: ``repr(config)`` without the settings added later
    at their old behaviour and without the settings that only change decisions."""
    items = [f"{f.name}={getattr(config, f.name)!r}" for f in fields(config)
             if not _decision_only(f)
             and not ("before" in f.metadata and getattr(config, f.name) == f.metadata["before"])]
    return f"{type(config).__name__}({', '.join(items)})"


def _learning_settings(config: PolicyConfig) -> dict[str, Any]:
    """The settings a checkpoint depends on (every field but the decision-only ones), as JSON
    values."""
    settings = {f.name: getattr(config, f.name) for f in fields(config) if not _decision_only(f)}
    return dict(orjson.loads(orjson.dumps(settings)))


def _differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """How a checkpoint's manifest differs from what this router would write, field by
    field; a setting the manifest lacks (added since) counts at its value from before."""
    out = []
    for key in sorted(set(stored) | set(current)):
        if key == "settings":
            continue
        if stored.get(key) != current.get(key):
            out.append(f"{key} {stored.get(key)!r} then, {current.get(key)!r} now")
    befores = {f.name: f.metadata["before"] for f in fields(PolicyConfig)
               if "before" in f.metadata}
    old, new = stored.get("settings") or {}, current.get("settings") or {}
    for name in sorted(set(old) | set(new)):
        then = old.get(name, befores.get(name, "(unset)"))
        if then != new.get(name, befores.get(name, "(unset)")):
            out.append(f"{name} {then!r} then, {new.get(name)!r} now")
    return out


#: decisions whose policy memo the learner keeps for their rewards (the policy bounds its
#: own caches; a memo is a small token)
_MEMOS = 4096
#: Rewards written and not learned yet that the learner keeps in hand (see ``Learner.keep``);
#: older ones are read back from the log.
_KEPT = 1024


class Learner:
    """Owns the policy and the memory on behalf of one :class:`Router` (not thread-safe:
    the router holds its lock around every call)."""

    def __init__(self, *, store: Store, policy: Policy, dim: int, config: RouterConfig,
                 embedder_name: str, clock: Callable[[], float], arm: str = "") -> None:
        self.store = store
        self.arm = arm
        self.policy = policy
        self.dim = dim
        self.config = config
        self.embedder_name = embedder_name
        self.clock = clock
        self.memory = self._new_memory()
        self.seq = 0
        self.learned = 0
        self._checkpointed_at = 0
        self._stats: dict[str, dict[str, float]] = {}
        self.clusters: TaskClusters | None = None
        self._cluster_try_at = config.cluster_after
        #: the policy's memo of each recent decision, by event id, handed back with its reward
        self._memos: OrderedDict[str, object] = OrderedDict()
        #: rewards this process wrote and has not learned, in hand for catch_up (see keep)
        self._kept: list[LearnItem] = []
        self._kept_lock = threading.Lock()
        #: published checkpoints found unusable here (other settings, damaged): not re-read
        self._rejected: set[int] = set()
        #: the memory's code key and the last reward seq sealed in a page under it (read
        #: from the store when the key changes; see ``_pages``)
        self._paged: tuple[str, int] | None = None

    def _new_memory(self, data: bytes | None = None) -> Memory:
        dim, capacity, limit = self.dim, self.config.memory_size, self.config.exact_recall_limit
        if data is None:
            return Memory(dim=dim, capacity=capacity, exact_limit=limit, seed=self.policy.seed)
        # a memory already held gives its rows faster than the pages (a follower loading
        # each publication); a start has none
        codes = None if len(self.memory) else PageReader(self.store, arm=self.arm)
        return Memory.from_bytes(data, dim=dim, capacity=capacity, exact_limit=limit,
                                 seed=self.policy.seed, fetch=self._fetch_vectors,
                                 codes=codes)

    def _fetch_vectors(self, seqs: np.ndarray) -> np.ndarray:
        """The task embeddings of rewards ``seqs``: those the memory in use holds already
        are copied from it, only the others read from the log (a follower loading each new
        publication reads the rewards learned since the last one, not the whole memory)."""
        held = self.memory.seqs() if len(self.memory) else np.zeros(0, np.int64)
        if not len(held):
            return self.store.embeddings(seqs, dim=self.dim)
        position = {int(q): i for i, q in enumerate(held.tolist()) if q >= 0}
        rows = np.array([position.get(int(q), -1) for q in seqs.tolist()], np.int64)
        have = rows >= 0
        out = np.empty((len(seqs), self.dim), np.float32)
        if have.any():
            out[have] = self.memory.vectors(rows[have])
        if not have.all():
            out[~have] = self.store.embeddings(seqs[~have], dim=self.dim)
        return out

    # -- identity of what a checkpoint holds ---------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """What a checkpoint is written with, and must match to be loaded: the policy, its
        learning settings and pinned weights, the embedder, the memory's size, the task
        clusters' key."""
        policy = self.policy
        settings: dict[str, Any] = {}
        pinned: Any = []
        if isinstance(policy, VWPolicy):
            settings = _learning_settings(policy.config)
            pinned = orjson.loads(orjson.dumps(sorted(policy.pinned.items())))
        return {"format": CHECKPOINT_FORMAT, "policy": type(policy).__name__,
                "settings": settings, "pinned": pinned,
                "embedder": self.embedder_name, "dim": self.dim,
                "memory_size": self.config.memory_size, "clusters": self._cluster_key()}

    def config_hash(self) -> str:
        """Format 1's identity of what a checkpoint was written with (a hash), still written
        beside the manifest, so that a release before format 2 can load the checkpoint."""
        settings = _legacy_settings(self.policy.config) if isinstance(self.policy,
                                                                       VWPolicy) else ""
        pinned = repr(sorted(self.policy.pinned.items())) if isinstance(self.policy,
                                                                          VWPolicy) else ""
        text = "|".join([type(self.policy).__name__, settings, pinned, self.embedder_name,
                         str(self.dim), str(self.config.memory_size), self._cluster_key()])
        return hashlib.sha256(text.encode()).hexdigest()

    # -- task clusters -------------------------------------------------------------------------
    def _cluster_key(self) -> str:
        """What the codebooks depend on: the embedder, the sizes, the seed."""
        sizes = ",".join(map(str, self.config.task_clusters))
        text = f"{self.embedder_name}|{self.dim}|{sizes}|{self.config.cluster_after}|" \
               f"{self.policy.seed}"
        return hashlib.sha256(text.encode()).hexdigest()

    def task_context(self, embedding: np.ndarray, features: dict[str, float]) -> dict[str, Any]:
        """The context an event stores (the embedding is stored on its own): the task
        features ``T`` and, once the codebooks exist, the task's clusters ``K``."""
        if self.clusters is None:
            return {ns.TASK: features}
        return {ns.TASK: features, ns.CLUSTERS: self.clusters.features(embedding)}

    def _use_clusters(self, row: ClusterRow) -> bool:
        if hashlib.sha256(row.codebooks).hexdigest() != row.sha256:
            log.warning("task clusters %s are corrupt (checksum mismatch); not used", row.key)
            return False
        try:
            clusters = TaskClusters.from_bytes(row.codebooks)
        except Exception as exc:  # numpy raises many types on a damaged blob
            log.warning("task clusters %s do not load (%s); not used", row.key, exc)
            return False
        if clusters.dim != self.dim or clusters.sizes != self.config.task_clusters:
            log.warning("task clusters %s do not fit this router's settings; not used",
                        row.key)
            return False
        self.clusters = clusters
        return True

    def fit_clusters(self, embeddings: np.ndarray) -> bool:
        """Fit the codebooks on the distinct tasks of ``embeddings`` and store them, unless
        another process stored them first (then theirs are used). False when there are too few
        distinct tasks: fewer than ``cluster_after`` and than 20 per cluster of the largest
        codebook."""
        sizes = self.config.task_clusters
        self.load_clusters()
        if self.clusters is not None or not sizes:
            return self.clusters is not None
        tasks = np.unique(np.asarray(embeddings, np.float32), axis=0)
        if len(tasks) < min(self.config.cluster_after, _TASKS_PER_CLUSTER * max(sizes)):
            return False
        clusters = TaskClusters.fit(tasks, sizes=sizes, seed=self.policy.seed)
        data = clusters.to_bytes()
        row = self.store.add_clusters(ClusterRow(
            arm=self.arm, key=self._cluster_key(), created_at=self.clock(), tasks=len(tasks),
            sha256=hashlib.sha256(data).hexdigest(), codebooks=data))
        if self._use_clusters(row):
            log.info("task clusters %s fitted on %d tasks", sizes, len(tasks))
        return self.clusters is not None

    def _maybe_cluster(self) -> None:
        """Load the stored codebooks, or fit them once the memory holds enough tasks."""
        if self.clusters is not None or not self.config.task_clusters:
            return
        if (len(self.memory) >= self._cluster_try_at
                and not self.fit_clusters(self.memory.vectors())):
            # repeated tasks: try again when the memory has grown by a quarter
            self._cluster_try_at = int(len(self.memory) * 1.25) + 1

    def load_clusters(self) -> None:
        """Use the codebooks stored for this router, if any."""
        if self.clusters is None and self.config.task_clusters:
            stored = self.store.clusters(self.arm, self._cluster_key())
            if stored is not None:
                self._use_clusters(stored)

    def keep_memo(self, event_id: str, memo: object) -> None:
        """Keep the policy's memo of a decision for the update of its reward (the newest
        ``_MEMOS`` decisions; an older one is learned without, which only costs time)."""
        if memo is None:
            return
        self._memos[event_id] = memo
        if len(self._memos) > _MEMOS:
            self._memos.popitem(last=False)

    # -- estimates -----------------------------------------------------------------------------
    def estimates(self, specs: Sequence[ModelSpec], embedding: np.ndarray,
                  input_tokens: int) -> list[Estimate]:
        keys = [s.key for s in specs]
        recall = self.memory.recall(embedding, keys, k=self.config.neighbours,
                                    per_model=self.config.per_model_neighbours)
        return estimates(specs, recall, input_tokens=input_tokens, stats=self._stats,
                         prior_strength=self.config.prior_strength,
                         task_difficulty=self.config.task_difficulty,
                         default_output_tokens=self.config.default_output_tokens)

    # -- learning ------------------------------------------------------------------------------
    def _learn(self, item: LearnItem) -> None:
        try:
            self._learn_one(item)
        except Exception:  # one unreadable row must not stop the log for good
            log.exception("reward %d for event %s cannot be learned; skipped",
                          item.reward.seq, item.event.id)

    def _learn_one(self, item: LearnItem) -> None:
        event, reward = item.event, item.reward
        if reward.held_back:  # its tenant was past its learning rate: counted, not learned
            self.learned += 1
            return
        embedding = np.frombuffer(event.embedding, dtype=np.float32)
        if embedding.shape[0] != self.dim:
            log.warning("event %s was embedded by %s (dim %d); skipped", event.id,
                        event.embedder, embedding.shape[0])
            return
        # what the decision saw: the embedding, and the features its event stored (T, K)
        context: dict[str, Any] = {ns.EMBEDDING: embedding, ns.TASK: {}, **event.context}
        actions = [logged_action(a["features"]) for a in event.actions]
        self.policy.learn(context, actions, event.chosen, reward.reward, event.probability,
                          memo=self._memos.pop(event.id, None))
        if not reward.is_default and reward.error is None:
            self.memory.add(embedding, event.model_key, quality=reward.quality,
                            reward=reward.reward, cost_usd=reward.cost_usd,
                            latency_s=reward.latency_s, output_tokens=reward.output_tokens,
                            seq=reward.seq)
        self.learned += 1

    def learn_new(self, seq: int, reward: RewardRow, event: EventRow) -> None:
        """Learn a reward this process just wrote. If it is the next one in the log (no other
        writer came in between) it is learned from the rows in hand; otherwise the log is
        tailed, which learns it in its place."""
        if event.arm != self.arm:  # another arm's decision: its own router learns it
            return
        if seq == self.seq + 1:
            self._learn(LearnItem(reward, event))
            self.seq = seq
            self._stats = self.memory.model_stats()
            self._maybe_cluster()
        else:
            self.catch_up()

    def keep(self, item: LearnItem) -> None:
        """Keep a reward this process wrote and did not learn (``reward(learn=False)``) in
        hand: :meth:`catch_up` then learns it from these rows instead of reading them back
        from the log (about half a learned reward's time on SQLite). For a decision the
        caller held anyway (one it logged lately): keeping rows read back for the reward
        made the garbage collector's passes longer than the read they saved. The newest
        ``_KEPT``: an older one is read from the log, as any other process's. Thread-safe
        (request threads keep, the learner's thread catches up)."""
        with self._kept_lock:
            self._kept.append(item)
            if len(self._kept) > _KEPT:
                del self._kept[: len(self._kept) - _KEPT]

    def _learn_kept(self, limit: int | None) -> int:
        """Learn, from the rows in hand, the kept rewards while each is the next reward in
        the log and of this arm (at most ``limit``); returns how many. A reward another
        writer logged in between makes a gap: the log's tail learns from there."""
        with self._kept_lock:
            kept = sorted((item for item in self._kept if item.reward.seq > self.seq),
                          key=lambda item: item.reward.seq)
        n = 0
        for item in kept:
            if ((limit is not None and n >= limit) or item.reward.seq != self.seq + 1
                    or item.event.arm != self.arm):
                break
            self._learn(item)
            self.seq = item.reward.seq
            n += 1
        return n

    def learn_written(self, items: list[LearnItem]) -> int:
        """Learn rows this process just wrote (with their seqs) without reading them back,
        when they are the next ones in the log for this arm; otherwise tail the log, which
        learns them in their place. Returns how many rewards were learned."""
        seqs = [item.reward.seq for item in items]
        if (not items or any(item.event.arm != self.arm for item in items)
                or seqs != list(range(self.seq + 1, self.seq + 1 + len(items)))):
            return self.catch_up()
        for item in items:
            self._learn(item)
            self.seq = item.reward.seq
        self._stats = self.memory.model_stats()
        self._maybe_cluster()
        return len(items) + self.catch_up()

    def catch_up(self, *, limit: int | None = None) -> int:
        """Learn the rewards logged after the last one learned (at most ``limit``), those
        kept in hand (:meth:`keep`) from their rows; returns how many."""
        total = self._learn_kept(limit)  # the rows in hand first, then the log
        while True:
            size = 5000 if limit is None else min(5000, limit - total)
            if size <= 0:
                break
            batch = self.store.learn_log(self.seq, limit=size, arm=self.arm)
            for item in batch:
                self._learn(item)
                self.seq = item.reward.seq
            total += len(batch)
            if len(batch) < size:
                break
        if total:
            self._stats = self.memory.model_stats()
            self._maybe_cluster()
        with self._kept_lock:  # learned by now, from their rows or from the log
            self._kept = [item for item in self._kept if item.reward.seq > self.seq]
        return total

    def expire(self, before: float) -> int:
        """Give every pending event created before ``before`` its default reward."""
        total, batch = 0, 5000
        while True:
            n = self.store.add_default_rewards(before=before, now=self.clock(),
                                               reward=self.config.default_reward, limit=batch)
            total += n
            if n < batch:
                return total

    # -- checkpoints -----------------------------------------------------------------------------
    def checkpoint_failed(self, before: int) -> None:
        """A snapshot's checkpoint was not written: it is due again (``before``: what
        :attr:`checkpointed_at` was before the snapshot), and so are its pages."""
        self._checkpointed_at = before
        self._paged = None

    @property
    def checkpointed_at(self) -> int:
        """Rewards learned when the last checkpoint was written or loaded."""
        return self._checkpointed_at

    @property
    def checkpoint_due(self) -> bool:
        return self.learned - self._checkpointed_at >= self.config.checkpoint_every

    def snapshot(self) -> Snapshot:
        """The state to checkpoint (manifest, policy, memory, seq, learned): cheap copies,
        taken under the router's lock; :func:`write_checkpoint` does the slow part.

        The memory's vectors are not copied: every row names the reward it was learned from,
        and the log keeps that event's embedding, so a restore reads them back from there.
        A checkpoint then grows by a few dozen bytes per remembered task (not 1.5 kB for
        384 dimensions: 15 MB at 10,000 tasks before)."""
        self._checkpointed_at = self.learned
        memory = self.memory.copy_out(vectors=not self.memory.logged)
        pages, keep_pages = self._pages_due()
        return Snapshot(manifest=self.manifest(), config_hash=self.config_hash(),
                        policy=self.policy.to_bytes(), memory=memory, seq=self.seq,
                        learned=self.learned, arm=self.arm, pages=pages,
                        keep_pages=keep_pages)

    def _pages_due(self) -> tuple[tuple[Page, ...], tuple[str, int]]:
        """A compact memory's pages to seal with this checkpoint (the first whole pages of
        rows not sealed yet, a few at most; see ``_pages``), and which of the arm's pages
        stay: those of its code key from its oldest row on (another memory's pages, or pages
        of rows it has dropped, go)."""
        memory = self.memory
        key = memory.code_key
        seqs = memory.seqs()
        if key is None or not memory.logged or not len(seqs):
            return (), ("", 0)
        if self._paged is None or self._paged[0] != key:
            sealed = self.store.memory_pages(self.arm, key)
            self._paged = (key, max((last for _, _, last in sealed), default=-1))
        pages = tuple(pages_due(memory, after=self._paged[1],
                                limit=_pages.PAGES_PER_CHECKPOINT))
        if pages:
            self._paged = (key, int(pages[-1].seqs[-1]))
        return pages, (key, int(seqs[0]))

    def checkpoint(self) -> None:
        write_checkpoint(self.store, self.snapshot(), self.clock())

    def checkpoint_if_dirty(self) -> None:
        if self.learned != self._checkpointed_at:
            self.checkpoint()

    def _prepare(self, row: CheckpointRow) -> Memory | None:
        """The part of loading ``row`` that needs no lock: its settings and checksum checked
        and its memory built (the vectors read back from the log); None when it is unusable."""
        if row.manifest is not None:
            differences = _differences(row.manifest, self.manifest())
            if differences:
                log.info("checkpoint %d was written with other settings (%s); not used",
                         row.id, "; ".join(differences))
                return None
        elif row.config_hash != self.config_hash():  # format 1: the hash alone
            log.info("checkpoint %d was written with other settings; not used", row.id)
            return None
        if hashlib.sha256(row.policy + row.memory).hexdigest() != row.sha256:
            log.warning("checkpoint %d is corrupt (checksum mismatch); not used", row.id)
            return None
        try:
            return self._new_memory(row.memory)
        except Exception as exc:  # a damaged blob fails in numpy with many types
            log.warning("checkpoint %d does not load (%s); not used", row.id, exc)
            return None

    def _install(self, row: CheckpointRow, memory: Memory) -> bool:
        """Put a prepared checkpoint in place: the policy's model, then everything else."""
        try:
            self.policy.load_bytes(row.policy)
        except Exception as exc:  # a damaged blob fails in VW with many types
            log.warning("checkpoint %d does not load (%s); not used", row.id, exc)
            return False
        self.memory = memory
        self.seq, self.learned = row.reward_seq, row.learned
        self._checkpointed_at = row.learned
        self._stats = memory.model_stats()
        self._memos.clear()  # a memo belongs to the model that made the decision
        return True

    def _load(self, row: CheckpointRow) -> bool:
        memory = self._prepare(row)
        return memory is not None and self._install(row, memory)

    def restore(self, *, learn: bool = True) -> None:
        """Newest usable checkpoint, then the log after it; else the whole log. With
        ``learn=False`` (a follower) the checkpoint only: the log is another process's."""
        self.load_clusters()
        restored = False
        for row in self.store.checkpoints(self.arm):
            if self._load(row):
                log.info("restored checkpoint %d at reward seq %d", row.id, row.reward_seq)
                restored = True
                break
        if not learn:
            return
        if not restored and self.store.learn_log(0, limit=1, arm=self.arm):
            log.warning("no usable checkpoint: rebuilding the policy from the event log")
        self.catch_up()
        self._stats = self.memory.model_stats()
        if self.checkpoint_due:
            self.checkpoint()

    # -- following a published model ------------------------------------------------------------
    def published(self) -> CheckpointRow | None:
        """The newest checkpoint of this arm if it has learned more than this learner, read
        whole (None otherwise: the usual answer, from one indexed query). One found unusable
        before is not read again."""
        head = self.store.newest_checkpoint(self.arm)
        if head is None or head[1] <= self.learned or head[0] in self._rejected:
            return None
        return self.store.checkpoint(head[0])

    def prepare(self, row: CheckpointRow) -> Memory | None:
        """:meth:`_prepare`, for a caller that installs under its lock (:meth:`install`)."""
        self.load_clusters()
        memory = self._prepare(row)
        if memory is None:
            self._reject(row)
        return memory

    def _reject(self, row: CheckpointRow) -> None:
        if row.id not in self._rejected:
            self._rejected.add(row.id)
            log.warning("published checkpoint %d cannot be served here (see above); this "
                        "process keeps its model (%d rewards learned)", row.id, self.learned)

    def install(self, row: CheckpointRow, memory: Memory) -> bool:
        """Install a prepared checkpoint unless this learner has meanwhile learned as much."""
        if row.learned <= self.learned:
            return False
        if self._install(row, memory):
            log.info("now at checkpoint %d (%d rewards learned)", row.id, row.learned)
            return True
        self._reject(row)
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What :meth:`Learner.snapshot` copies under the lock, for :func:`write_checkpoint`."""

    manifest: dict[str, Any]
    config_hash: str
    policy: bytes
    memory: MemoryCopy  # serialised by write_checkpoint, outside the lock
    seq: int
    learned: int
    arm: str
    #: the memory's pages sealed with it, and which of the arm's pages stay (``_pages_due``)
    pages: tuple[Page, ...] = ()
    keep_pages: tuple[str, int] | None = None


def write_checkpoint(store: Store, snap: Snapshot, now: float) -> None:
    """Serialise, hash and store a :meth:`Learner.snapshot` (outside the router's lock)."""
    memory = snap.memory.to_bytes()
    store.add_checkpoint(CheckpointRow(
        created_at=now, arm=snap.arm, reward_seq=snap.seq, learned=snap.learned,
        config_hash=snap.config_hash, manifest=snap.manifest,
        sha256=hashlib.sha256(snap.policy + memory).hexdigest(), policy=snap.policy,
        memory=memory), pages=[page.row(arm=snap.arm, now=now) for page in snap.pages],
        keep_pages=snap.keep_pages)

