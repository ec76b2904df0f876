"""The controller's store writes, off its event loop: one writer thread, batched commits.

``await writer.write(fn)`` runs ``fn(store)`` on the writer thread and resolves once the
transaction holding it has committed; everything queued while a commit runs goes into the
next one.  So the controller keeps write-before-act (it awaits the commit before it acts) and
never blocks its loop on SQLite, and many trials' writes share one commit under load.

Two ways in.  :meth:`write_batched` always hands the write to the thread (the metric reports
runners stream in: they may wait for company).  :meth:`write` commits at once on the caller's
thread when nothing is handed off (the controller's critical path: a hand-off to the thread
and back costs a scheduler wake-up each way, several milliseconds per trial on a loaded
machine: measured, the controller gap went from ~12 to ~48 ms with every write handed off),
and joins the queue behind handed-off writes otherwise.  Either way callers resume in the
order they wrote.

A failed commit (``database or disk is full``, or :class:`FencedError`) fails every write in
it: their awaiting callers see the exception.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Callable

from nniray.storage import ExperimentStore

_STOP = object()
MAX_BATCH = 512


class StoreWriter:
    def __init__(self, store: ExperimentStore) -> None:
        self.store = store
        self._q: "queue.Queue[Any]" = queue.Queue()
        self._outstanding = 0  # writes handed to the thread and not yet answered (loop thread only)
        self._thread = threading.Thread(target=self._run, daemon=True, name="nniray-store-writer")
        self._thread.start()

    def write(self, fn: Callable[[ExperimentStore], Any]) -> "asyncio.Future[Any]":
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        if self._outstanding == 0:
            try:
                with self.store.transaction():
                    fut.set_result(fn(self.store))
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                fut.set_exception(e)
            return fut
        self._handoff(fn, fut, loop)
        return fut

    def write_batched(self, fn: Callable[[ExperimentStore], Any]) -> "asyncio.Future[Any]":
        """Always through the thread (for writes that may wait for company)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._handoff(fn, fut, loop)
        return fut

    def _handoff(self, fn: Any, fut: asyncio.Future, loop: asyncio.AbstractEventLoop) -> None:
        self._outstanding += 1
        fut.add_done_callback(self._answered)
        self._q.put((fn, fut, loop))

    def _answered(self, _fut: asyncio.Future) -> None:
        self._outstanding -= 1

    def close(self) -> None:
        self._q.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._q.put(_STOP)
                    break
                batch.append(nxt)
            results: list = []
            try:
                with self.store.transaction():
                    for fn, _, _ in batch:
                        results.append(fn(self.store))
            except BaseException as e:  # noqa: BLE001 - handed to every waiting caller
                for _, fut, loop in batch:
                    loop.call_soon_threadsafe(_fail, fut, e)
                continue
            for (_, fut, loop), res in zip(batch, results):
                loop.call_soon_threadsafe(_resolve, fut, res)


def _resolve(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
