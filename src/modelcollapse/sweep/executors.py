"""Executors run the unfinished cells of a study and hand back each finished one.

A cell is a pure function of its resolved config (its seeds derive from the study seed
and the cell's identity), so serial, process-pool and Ray runs give identical numbers.
When the study is stored, the worker that finishes a cell writes its table and marker
itself, so a crash loses only the cells in flight (and, inside a cell, only the chunk of
replicates in flight: finished chunks are checkpointed).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import pandas as pd

from ..errors import UserError
from ..loop import run_cell
from ..runs.config import CellConfig
from ..runs.store import RunStore

Result = tuple[str, pd.DataFrame | None]   # (cell key, table when not stored)
Progress = Callable[[int], None]

_QUEUE: Any = None  # the progress queue of a pool worker
_SHARED: Any = None  # what every task of ``map`` shares (forked workers inherit it)


class _Throttled:
    """Adds up progress units and forwards them at most every 0.2 s."""

    def __init__(self, send: Callable[[int], None]) -> None:
        self.send, self.pending, self.last = send, 0, 0.0

    def __call__(self, units: int) -> None:
        self.pending += units
        now = time.monotonic()
        if now - self.last > 0.2:
            self.flush()
            self.last = now

    def flush(self) -> None:
        if self.pending:
            self.send(self.pending)
            self.pending = 0


def execute_cell(cell_dict: dict[str, Any], out: str | None, on_progress: Progress | None = None) -> Result:
    """Simulate one cell; store it under ``out`` (returning no table) or return its table."""
    cell = CellConfig.from_dict(cell_dict)
    if on_progress is None and _QUEUE is not None:
        on_progress = _Throttled(_QUEUE.put)
    store = RunStore(out) if out is not None else None
    df = run_cell(cell, on_progress, store.checkpoint(cell) if store is not None else None)
    if isinstance(on_progress, _Throttled):
        on_progress.flush()
    if store is not None:
        store.save_cell(cell, df)
        return cell.key, None
    return cell.key, df


def _init_worker(queue: Any, parent: int) -> None:
    global _QUEUE
    _QUEUE = queue
    # One BLAS thread per worker: the pool already uses every core.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # The parent decides how to stop: Ctrl-C reaches the whole terminal group, and a forked
    # worker would otherwise run the parent's SIGTERM handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """Make this worker die with its parent (SIGKILL via Linux's PR_SET_PDEATHSIG; elsewhere
    a thread that watches the parent PID), so a killed sweep leaves no worker finishing
    queued cells and writing into the folder after it."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0   # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            armed = False
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:   # the parent died before the death signal was armed
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop the pool's workers now (on Ctrl-C, SIGTERM or an error): a cell in flight is
    lost, its finished chunks are on disk, and a rerun resumes."""
    for process in list(getattr(pool, "_processes", {}).values()):
        try:
            process.kill()
        except (OSError, ValueError):
            pass


class LocalExecutor:
    """Cells on ``workers`` local processes (1: in this process, no pool)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise UserError(f"--workers must be >= 1; got {workers}")
        self.workers = workers

    def run(self, cells: Sequence[CellConfig], out: str | None, progress: Progress) -> Iterator[Result]:
        if self.workers == 1 or len(cells) <= 1:
            for cell in cells:
                yield execute_cell(cell.to_dict(), out, progress)
            return
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(queue, os.getpid()))
        try:
            pending = {pool.submit(execute_cell, c.to_dict(), out) for c in cells}
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(queue, progress)
                for future in done:
                    yield future.result()
            _drain(queue, progress)
        except BaseException:
            _kill(pool)
            raise
        finally:
            # On an error or Ctrl-C, queued cells are dropped rather than run to completion;
            # finished cells are already on disk and a rerun resumes.
            pool.shutdown(wait=True, cancel_futures=True)

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any) -> list[Any]:
        """``[fn(item, shared) for item in items]``, on the pool when there is one. ``fn``
        must be a module-level function; ``shared`` reaches the forked workers without
        being pickled."""
        if self.workers == 1 or len(items) <= 1:
            return [fn(item, shared) for item in items]
        global _SHARED
        _SHARED = shared
        ctx = multiprocessing.get_context("fork")
        try:
            with ProcessPoolExecutor(min(self.workers, len(items)), mp_context=ctx,
                                     initializer=_init_worker, initargs=(None, os.getpid())) as pool:
                try:
                    return list(pool.map(_call_shared, [fn] * len(items), items))
                except BaseException:
                    _kill(pool)
                    raise
        finally:
            _SHARED = None


def _call_shared(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(item, _SHARED)


def _drain(queue: Any, progress: Progress) -> None:
    while True:
        try:
            progress(queue.get_nowait())
        except Exception:  # queue.Empty, or a queue closed at shutdown
            return


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, with one sentence, when a Ray address cannot be reached."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address must be HOST:PORT (or ray://HOST:PORT); got '{address}'")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise UserError(f"cannot reach a Ray cluster at {address} within {timeout:.0f} s ({e.strerror or e})") from None


def _connect(ray: Any, address: str, timeout: float = 60.0) -> None:
    """ray.init on an existing cluster, bounded in time: a port that answers but is not a
    Ray head would otherwise hang the run."""
    import threading
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
            outcome.append(None)
        except BaseException as e:  # reported below as one sentence
            outcome.append(e)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise UserError(f"no Ray cluster answered at {address} within {timeout:.0f} s")
    if outcome[0] is not None:
        raise UserError(f"cannot connect to a Ray cluster at {address} ({type(outcome[0]).__name__}: "
                        f"{str(outcome[0]).strip().splitlines()[0] if str(outcome[0]).strip() else ''})")


class RayExecutor:
    """Cells as Ray tasks (retried up to 3 times if a worker dies) on an existing cluster at
    ``address``, or on a local cluster started for the run on 127.0.0.1 (no dashboard,
    usage statistics off). Workers write to the same run folder, so a multi-node cluster
    needs the folder on a shared file system."""

    name = "ray"

    def __init__(self, workers: int = 1, address: str | None = None) -> None:
        if workers < 1:
            raise UserError(f"--workers must be >= 1; got {workers}")
        self.workers = workers
        self.address = address
        if address:
            _reachable(address)  # before any result folder is written

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """The ``ray`` module, connected (or a local cluster started) for the block."""
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        saved_env = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
        if not self.address:
            # Ray replaces a node IP of 127.0.0.1 by the machine's external address unless
            # "cluster mode" is off; off, every server of the local cluster (GCS, raylet,
            # workers, runtime-env agent) binds to loopback (tested on the listening sockets).
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        try:
            import ray
        except ImportError:
            raise UserError("the ray executor needs Ray: pip install 'modelcollapse[ray]'") from None
        try:
            from ray._private import ray_constants
        except ImportError:   # another layout: the environment variable above still applies
            ray_constants = None
        cluster_mode = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
        if not self.address and ray_constants is not None:
            ray_constants.ENABLE_RAY_CLUSTER = False   # read at call time, even if imported earlier
        started = False
        try:
            if not ray.is_initialized():
                if self.address:
                    _connect(ray, self.address)
                else:
                    ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                             configure_logging=False, _node_ip_address="127.0.0.1")
                started = True
            yield ray
        finally:
            if started:
                ray.shutdown()
            if not self.address:   # a later --address session needs the real node IP
                if ray_constants is not None and cluster_mode is not None:
                    ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
                if saved_env is None:
                    os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
                else:
                    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = saved_env

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any) -> list[Any]:
        """``[fn(item, shared) for item in items]`` as Ray tasks (``shared`` is put in the
        object store once), in order."""
        with self.session() as ray:
            ref = ray.put(shared)
            task = ray.remote(max_retries=3)(fn)
            return ray.get([task.remote(item, ref) for item in items])

    def run(self, cells: Sequence[CellConfig], out: str | None, progress: Progress) -> Iterator[Result]:
        with self.session() as ray:
            task = ray.remote(max_retries=3)(execute_cell)
            refs = {task.remote(c.to_dict(), out): c for c in cells}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in done:
                    cell = refs[ref]
                    progress(cell.generations * cell.replicates)
                    yield ray.get(ref)


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str = "local", workers: int = 1, address: str | None = None):
    if name not in EXECUTORS:
        from ..errors import unknown
        raise unknown("executor", name, EXECUTORS)
    if name == "ray":
        return RayExecutor(workers, address)
    if address:
        raise UserError("--address is only used with --executor ray")
    return LocalExecutor(workers)
