"""A compact memory's codes sealed in pages (``core._pages``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sqlalchemy import update

from bandit_router.core import _pages
from bandit_router.core._memory import Memory
from bandit_router.core._pages import Page, PageReader, pages_due, read_page
from bandit_router.core._store import CheckpointRow, MemoryPageRow, Store


def compact(n: int, *, seed: int = 0, first_seq: int = 1) -> Memory:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mem = Memory(dim=16, capacity=100_000, exact_limit=1024, lists=32, probes=4)
    for k, vec in enumerate(x):
        mem.add(vec, "p/m", quality=0.5, reward=0.0, cost_usd=0.01, latency_s=None,
                output_tokens=None, seq=first_seq + k)
    assert mem.code_key is not None
    return mem


def checkpoint_row(arm: str = "") -> CheckpointRow:
    return CheckpointRow(created_at=0.0, arm=arm, reward_seq=0, learned=0, config_hash="h",
                         sha256="s", policy=b"p", memory=b"m")


def test_whole_pages_are_sealed_after_the_last_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pages, "PAGE_ROWS", 400)
    mem = compact(1500)
    pages = pages_due(mem, after=0)
    assert [(int(p.seqs[0]), int(p.seqs[-1])) for p in pages] == [(1, 400), (401, 800),
                                                                  (801, 1200)]
    rows = np.arange(400, 800, dtype=np.int64)
    assert np.array_equal(pages[1].codes, mem.codes(rows))
    assert [int(p.seqs[0]) for p in pages_due(mem, after=800)] == [801]
    assert [int(p.seqs[0]) for p in pages_due(mem, after=0, limit=2)] == [1, 401]
    assert pages_due(mem, after=1200) == []
    assert pages_due(Memory(dim=16, capacity=100_000), after=0) == []  # no codes yet


def test_a_page_is_read_back_whole_or_refused() -> None:
    page = Page(key="k", seqs=np.array([2, 4, 6]), codes=np.arange(6, dtype=np.uint8)
                .reshape(3, 2))
    row = page.row(arm="a", now=1.0)
    back = read_page(row)
    assert back.key == "k" and np.array_equal(back.codes, page.codes)
    row.data = row.data[:-1] + bytes([row.data[-1] ^ 1])
    with pytest.raises(ValueError, match="checksum"):
        read_page(row)
    bad = Page(key="k", seqs=np.array([4, 2]), codes=np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="ascending"):
        read_page(bad.row(arm="a", now=1.0))


def test_the_reader_finds_the_sealed_rows_and_skips_a_damaged_page(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_pages, "PAGE_ROWS", 400)
    store = Store(f"sqlite:///{tmp_path}/pages.db")
    mem = compact(1500)
    key = mem.code_key
    assert key is not None
    pages = pages_due(mem, after=0)
    store.add_checkpoint(checkpoint_row(), pages=[p.row(arm="", now=0.0) for p in pages])
    store.add_checkpoint(checkpoint_row("other"),
                         pages=[pages[0].row(arm="other", now=0.0)])
    reader = PageReader(store, arm="")
    seqs = np.arange(350, 1250, dtype=np.int64)
    found, codes = reader(key, seqs)
    assert found.tolist() == [q <= 1200 for q in seqs.tolist()]
    assert np.array_equal(codes, mem.codes(seqs[found] - 1))
    assert reader(key + "x", seqs)[0].sum() == 0  # codes of another 8-bit range

    with store.session() as s:  # a damaged page: its rows are left to the log
        s.execute(update(MemoryPageRow).where(MemoryPageRow.first_seq == 401,
                                              MemoryPageRow.arm == "")
                  .values(data=b"broken"))
    with caplog.at_level(logging.WARNING, logger="bandit_router"):
        found, codes = PageReader(store, arm="")(key, seqs)
    assert "does not load" in caplog.text
    assert found.tolist() == [q <= 400 or 801 <= q <= 1200 for q in seqs.tolist()]
    store.close()


def test_a_checkpoint_keeps_only_the_pages_its_memory_can_use(db_url: str) -> None:
    store = Store(db_url)
    codes = np.zeros((2, 2), np.uint8)
    rows = [Page(key=k, seqs=np.array([a, b]), codes=codes).row(arm=arm, now=0.0)
            for k, a, b, arm in [("k", 1, 2, ""), ("k", 3, 4, ""), ("old", 5, 6, ""),
                                 ("k", 1, 2, "other")]]
    store.add_checkpoint(checkpoint_row(), pages=rows[:3])
    store.add_checkpoint(checkpoint_row("other"), pages=rows[3:])
    store.add_checkpoint(checkpoint_row(), keep_pages=("k", 3))
    assert [(a, b) for _, a, b in store.memory_pages("", "k")] == [(3, 4)]
    assert store.memory_pages("", "old") == []
    assert len(store.memory_pages("other", "k")) == 1  # another arm's pages stay
    page_id = store.memory_pages("", "k")[0][0]
    kept = store.memory_page(page_id)
    assert kept is not None and np.array_equal(read_page(kept).seqs, [3, 4])
    store.close()
