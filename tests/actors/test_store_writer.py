"""The controller's writer thread on a real SQLite store (no Ray): writes commit in order,
queued writes share a commit, and a failed commit fails every write in it."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from nniray.actors.store_writer import StoreWriter
from nniray.storage import ExperimentStore, FencedError


def test_writes_commit_in_order_and_answer_their_results(tmp_path):
    store = ExperimentStore(tmp_path)
    store.claim()
    writer = StoreWriter(store)

    async def main():
        # Handed to the thread and written inline, interleaved: answered in the order written.
        futs = [(writer.write_batched if i % 3 else writer.write)(lambda s, i=i: (s.set_meta(f"k{i}", i), i)[1])
                for i in range(50)]
        order = []
        for f in futs:
            f.add_done_callback(lambda f: order.append(f.result()))
        await asyncio.gather(*futs)
        return order
    try:
        assert asyncio.run(main()) == list(range(50))
    finally:
        writer.close()
    reader = ExperimentStore(tmp_path, readonly=True)
    assert [reader.get_meta(f"k{i}") for i in range(50)] == list(range(50))


def test_a_failed_commit_fails_its_writes_and_later_writes_still_work(tmp_path):
    store = ExperimentStore(tmp_path)
    store.claim()
    writer = StoreWriter(store)

    def boom(s):
        s.set_meta("half", 1)
        raise sqlite3.OperationalError("database or disk is full")

    async def main():
        bad = writer.write_batched(boom)
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            await bad
        return await writer.write(lambda s: s.set_meta("after", 2) or "ok")
    try:
        assert asyncio.run(main()) == "ok"
    finally:
        writer.close()
    reader = ExperimentStore(tmp_path, readonly=True)
    assert reader.get_meta("half") is None  # rolled back with its commit
    assert reader.get_meta("after") == 2


def test_a_fenced_store_refuses_through_the_writer(tmp_path):
    store = ExperimentStore(tmp_path)
    store.claim()
    ExperimentStore(tmp_path).claim()  # another controller took over
    writer = StoreWriter(store)

    async def main():
        await writer.write(lambda s: s.set_meta("x", 1))
    try:
        with pytest.raises(FencedError):
            asyncio.run(main())
    finally:
        writer.close()
