"""Where cells run: ``local`` (this machine) or ``ray`` (a Ray cluster, or a local one).

Both hand each finished cell to the driver as it finishes, in whatever order; the driver
journals it. Neither changes a result: a cell is the same backtest wherever it runs.

``local`` with one worker runs the cells in this process; with more, in a process pool started
with ``forkserver`` (``spawn`` where there is none): no worker inherits the driver's state,
each reads each snapshot once, and at most two cells per worker are in flight, so a killed
sweep loses no more than those. A worker that dies (killed, out of memory) breaks the pool: the
pool is started again and the cells it held are tried once more; a cell that took a worker
down twice is recorded as failed with that error.

``ray`` connects to the cluster at ``--address`` (``HOST:PORT`` of its head) or starts a
local one with ``--workers`` CPUs (all by default) and stops it at the end. Each snapshot is
read once, by the driver, and put into Ray's object store; each worker (an actor, one CPU
each) takes it from there once, without a copy, and keeps it for all its cells. The cluster's
machines need this package installed, at the same version.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from weltklassebot.errors import UsageError
from weltklassebot.sweep.cells import FAILED, Cell, CellResult
from weltklassebot.sweep.data import SnapshotArrays
from weltklassebot.sweep.worker import SweepContext, Worker, init_process, run_in_process

Done = Callable[[Cell, CellResult], None]
IN_FLIGHT_PER_WORKER = 2
ATTEMPTS = 2


class Backend(Protocol):
    name: str
    workers: int

    def run(self, cells: list[Cell], done: Done) -> None: ...

    def snapshot_reads(self) -> int: ...

    def close(self) -> None: ...


def make_backend(kind: str, context: SweepContext, workers: int | None,
                 address: str | None) -> Backend:
    if kind == "ray":
        return RayBackend(context, workers, address)
    if address is not None:
        raise UsageError("--address names a Ray cluster: use it with --backend ray.")
    return LocalBackend(context, workers or default_workers())


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class LocalBackend:
    name = "local"

    def __init__(self, context: SweepContext, workers: int) -> None:
        self.context = context
        self.workers = workers
        self.inline = Worker(context) if workers == 1 else None
        self.pool: ProcessPoolExecutor | None = None
        self.reads: dict[int, int] = {}  # snapshot reads per worker process

    def _start_pool(self) -> ProcessPoolExecutor:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods
                                              else "spawn")
        if context.get_start_method() == "forkserver":
            preload = ["weltklassebot.sweep.worker"]
            if self.context.fast_path:
                preload.append("weltklassebot.sweep.warm_fast")  # compiled once, then forked
            context.set_forkserver_preload(preload)
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=init_process,
                                   initargs=(self.context,))

    def run(self, cells: list[Cell], done: Done) -> None:
        if self.inline is not None:
            for cell in cells:
                done(cell, self.inline.run(cell))
            return
        queue = deque(cells)
        attempts: dict[int, int] = {}
        while queue:
            queue = self._run_pool(queue, attempts, done)

    def _run_pool(self, queue: deque[Cell], attempts: dict[int, int],
                  done: Done) -> deque[Cell]:
        """Run the queue on a pool; the cells left when a worker died (to try again)."""
        if self.pool is None:
            self.pool = self._start_pool()
        pool = self.pool
        flying: dict[Future[tuple[int, CellResult, int, int]], Cell] = {}
        limit = IN_FLIGHT_PER_WORKER * self.workers
        try:
            while queue or flying:
                while queue and len(flying) < limit:
                    cell = queue.popleft()
                    flying[pool.submit(_pooled, cell)] = cell
                finished, _ = wait(flying, return_when=FIRST_COMPLETED)
                for future in finished:
                    cell = flying.pop(future)
                    _index, result, pid, loads = future.result()
                    self.reads[pid] = loads
                    done(cell, result)
        except BrokenProcessPool as exc:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
            retry: deque[Cell] = deque()
            for cell in sorted(flying.values(), key=lambda c: c.index):
                attempts[cell.index] = attempts.get(cell.index, 0) + 1
                if attempts[cell.index] >= ATTEMPTS:
                    done(cell, CellResult(FAILED, error=(
                        "the worker process running this cell died twice (killed, or out of "
                        f"memory: {exc}); the cell was not run to its end")))
                else:
                    retry.append(cell)
            return retry + queue
        return deque()

    def snapshot_reads(self) -> int:
        if self.inline is not None:
            return self.inline.loads
        return sum(self.reads.values())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _pooled(cell: Cell) -> tuple[int, CellResult, int, int]:
    index, result, loads = run_in_process(cell)
    return index, result, os.getpid(), loads


# -- Ray ------------------------------------------------------------------------------------

class RayWorker:
    """A Ray actor: one worker with every snapshot's bars from the object store."""

    def __init__(self, context: SweepContext, refs: dict[str, Any]) -> None:
        import ray

        self.worker = Worker(context, {sha: ray.get(ref) for sha, ref in refs.items()})

    def run(self, cell: Cell) -> CellResult:
        return self.worker.run(cell)

    def loads(self) -> int:
        return self.worker.loads


def import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise UsageError("--backend ray needs the ray package: install it with `pip install "
                         "'weltklassebot[ray]'` (scripts/setup.sh installs it), or use "
                         "--backend local.") from None
    return ray


class RayBackend:
    name = "ray"

    def __init__(self, context: SweepContext, workers: int | None, address: str | None) -> None:
        import logging

        ray = import_ray()
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
                else:
                    ray.init(num_cpus=workers or default_workers(), include_dashboard=False,
                             logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"at {address}" if address else "on this machine"
                raise UsageError(f"could not start or reach a Ray cluster {where}: "
                                 f"{' '.join(str(exc).split())}. Check --address (HOST:PORT "
                                 "of the head node) or use --backend local.") from exc
            self.started = not address
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, min(workers or cpus, cpus))
        # Each snapshot read once, here, into the object store; the actors take it from there.
        refs = {ref.sha256: ray.put(SnapshotArrays.load(ref)) for ref in context.snapshots}
        self.actor_class = ray.remote(num_cpus=1)(RayWorker)
        self.context = context
        self.refs = refs
        self.actors = [self._new_actor() for _ in range(self.workers)]

    def _new_actor(self) -> Any:
        return self.actor_class.remote(self.context, self.refs)

    def run(self, cells: list[Cell], done: Done) -> None:
        ray = self.ray
        queue = deque(cells)
        load = [0] * len(self.actors)
        flying: dict[Any, tuple[Cell, int]] = {}
        attempts: dict[int, int] = {}
        while queue or flying:
            for slot in range(len(self.actors)):
                while queue and load[slot] < IN_FLIGHT_PER_WORKER:
                    cell = queue.popleft()
                    flying[self.actors[slot].run.remote(cell)] = (cell, slot)
                    load[slot] += 1
            ready, _ = ray.wait(list(flying), num_returns=1)
            for ref in ready:
                cell, slot = flying.pop(ref)
                load[slot] -= 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    self.actors[slot] = self._new_actor()
                    attempts[cell.index] = attempts.get(cell.index, 0) + 1
                    if attempts[cell.index] < ATTEMPTS:
                        queue.append(cell)
                        continue
                    result = CellResult(FAILED, error=(
                        "the Ray worker running this cell died twice "
                        f"({' '.join(str(exc).split())[:300]})"))
                except ray.exceptions.RayError as exc:
                    result = CellResult(FAILED, error=f"Ray: {' '.join(str(exc).split())[:500]}")
                done(cell, result)

    def snapshot_reads(self) -> int:
        return len(self.refs)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started:
            self.ray.shutdown()
