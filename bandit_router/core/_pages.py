"""A compact memory's codes in sealed pages, so that a restart does not read a million task
embeddings back from the event log.

A checkpoint keeps the memory's outcomes, seqs and lists but not its vectors: they are in
the log, one embedding per event. Reading a million of them back (a join of the rewards with
the events, 1.5 GB of floats) was most of a start-up. A compact memory stores each task as
8-bit codes that never change once made (its 8-bit range is fixed when it moves to its
lists), so whoever checkpoints it seals the codes of every :data:`PAGE_ROWS` rows in a page
(a quarter of their floats, one sequential blob), written with the checkpoint and never
changed; a restart files the pages' codes and reads only the rows after the last page from
the log.

Pages are a cache of the log: one that is missing, pruned meanwhile or damaged is skipped
and its rows read from the log, so nothing depends on them being there.

>>> import numpy as np
>>> page = Page(key="k", seqs=np.array([3, 5, 9]), codes=np.zeros((3, 2), np.uint8))
>>> row = page.row(arm="", now=0.0)
>>> (row.first_seq, row.last_seq, row.rows), read_page(row).seqs.tolist()
((3, 9, 3), [3, 5, 9])
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._memory import Memory
from ._store import MemoryPageRow, Store

__all__ = ["PAGES_PER_CHECKPOINT", "PAGE_ROWS", "Page", "PageReader", "pages_due",
           "read_page"]

log = logging.getLogger("bandit_router")

#: rows a page holds: 65,536 rows of 384 dimensions are 25 MB of codes (a million-task
#: memory seals 15 of them, one every 65,536 rewards)
PAGE_ROWS = 65_536
#: pages sealed with one checkpoint at most: a memory that already held many rows when
#: sealing began (after an upgrade) seals them over several checkpoints, each holding the
#: router's lock for a few pages' codes (about 0.1 s a page on two cores), not all at once
PAGES_PER_CHECKPOINT = 2


@dataclass(frozen=True, slots=True)
class Page:
    """The codes of consecutive rows, by their reward seqs (ascending)."""

    key: str
    seqs: npt.NDArray[np.int64]
    codes: npt.NDArray[np.uint8]

    def row(self, *, arm: str, now: float) -> MemoryPageRow:
        """The page as a table row (its arrays in numpy's ``.npz``, with their hash)."""
        buf = io.BytesIO()
        np.savez(buf, seqs=np.asarray(self.seqs, np.int64),
                 codes=np.asarray(self.codes, np.uint8))
        data = buf.getvalue()
        return MemoryPageRow(arm=arm, code_key=self.key, first_seq=int(self.seqs[0]),
                             last_seq=int(self.seqs[-1]), rows=len(self.seqs), created_at=now,
                             sha256=hashlib.sha256(data).hexdigest(), data=data)


def read_page(row: MemoryPageRow) -> Page:
    """The page a row holds; ValueError unless it is whole (its hash, ascending seqs, one
    row of codes per seq)."""
    if hashlib.sha256(row.data).hexdigest() != row.sha256:
        raise ValueError("checksum mismatch")
    try:
        with np.load(io.BytesIO(row.data), allow_pickle=False) as arrays:
            seqs = np.asarray(arrays["seqs"], np.int64)
            codes = np.asarray(arrays["codes"], np.uint8)
    except Exception as exc:  # numpy raises many types on a damaged blob
        raise ValueError(f"not a page ({exc})") from None
    if not (seqs.ndim == 1 and codes.ndim == 2 and len(codes) == len(seqs) == row.rows
            and len(seqs) and (np.diff(seqs) > 0).all()):
        raise ValueError("not one row of codes per ascending seq")
    return Page(key=row.code_key, seqs=seqs, codes=codes)


def pages_due(memory: Memory, *, after: int, limit: int | None = None) -> list[Page]:
    """The pages to seal now: every whole :data:`PAGE_ROWS` of the memory's rows whose seqs
    come after ``after`` (the last seq already sealed under its key), the first ``limit``
    of them with a limit. None unless the memory stores codes and every row names its
    reward."""
    key = memory.code_key
    if key is None or not memory.logged:
        return []
    seqs = memory.seqs()
    if len(seqs) > 1 and not (np.diff(seqs) > 0).all():
        return []  # (rows are learned in seq order; anything else is not paged)
    start = int(np.searchsorted(seqs, after, side="right"))
    pages: list[Page] = []
    while len(seqs) - start >= PAGE_ROWS and (limit is None or len(pages) < limit):
        rows = np.arange(start, start + PAGE_ROWS, dtype=np.int64)
        pages.append(Page(key=key, seqs=seqs[rows], codes=memory.codes(rows)))
        start += PAGE_ROWS
    return pages


class PageReader:
    """The sealed codes of an arm's rows, for :meth:`Memory.from_bytes` (``codes=``): asked
    for a chunk of seqs under a key, it reads the pages that hold them (one or two at a time,
    each once) and says which rows it found."""

    _KEEP = 2  # pages held at once: a chunk of rows spans at most two

    def __init__(self, store: Store, *, arm: str) -> None:
        self.store, self.arm = store, arm
        self._index: dict[str, list[tuple[int, int, int]]] = {}
        self._held: OrderedDict[int, Page | None] = OrderedDict()

    def _page(self, page_id: int) -> Page | None:
        if page_id in self._held:
            self._held.move_to_end(page_id)
            return self._held[page_id]
        row = self.store.memory_page(page_id)
        page = None
        if row is not None:
            try:
                page = read_page(row)
            except ValueError as exc:
                log.warning("memory page %d does not load (%s); its rows are read from the "
                            "log", page_id, exc)
        self._held[page_id] = page
        if len(self._held) > self._KEEP:
            self._held.popitem(last=False)
        return page

    def __call__(self, key: str, seqs: npt.NDArray[np.int64]
                 ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]:
        if key not in self._index:
            self._index[key] = self.store.memory_pages(self.arm, key)
        found = np.zeros(len(seqs), bool)
        codes: npt.NDArray[np.uint8] | None = None
        if not len(seqs):
            return found, np.zeros((0, 0), np.uint8)
        low, high = int(seqs.min()), int(seqs.max())
        for page_id, first, last in self._index[key]:
            if last < low or first > high:
                continue
            page = self._page(page_id)  # (one of ``key``'s: the store was asked for those)
            if page is None:
                continue
            at = np.minimum(np.searchsorted(page.seqs, seqs), len(page.seqs) - 1)
            hit = (page.seqs[at] == seqs) & ~found
            if hit.any():
                if codes is None:
                    codes = np.empty((len(seqs), page.codes.shape[1]), np.uint8)
                elif codes.shape[1] != page.codes.shape[1]:
                    continue
                codes[hit] = page.codes[at[hit]]
                found |= hit
        if codes is None:
            return found, np.zeros((0, 0), np.uint8)
        return found, codes[found]
