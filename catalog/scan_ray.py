"""The scan's analysis on a Ray cluster (`viml scan --ray [ADDRESS]`), behind the same executor interface
as the local process pool (`submit(fn, argument)` / `wait()` / `shutdown()`), so the scan's driver logic
(routing, the one writer, one transaction per file, resumability, summaries, events) stays one copy.

- Workers are Ray actors, one per CPU the cluster offers (or `jobs`), each loading the scan's analyzer
  once (loading the music model per task would cost more than most analyses) and running the same pure
  functions of catalog/analysis.py the local workers run. Results come back to the driver, which writes.
- Workers open the files by the driver's path: the music folder must be mounted at the same path on every
  node (docs/sections/big-libraries.md). The scan's analysis spec travels as environment variables set
  in each actor (every VIML_* variable of the driver: the bundle folder, the rhythm switch, VIML_HOME).
- An actor that dies (a segfault in a decoder, the OOM killer, a lost node) fails only the file it had
  (kind "crashed"), as in the local pool, and a new actor takes over; one that cannot load the analyzer
  stops the scan. Killing the driver (even kill -9) ends the job's actors (Ray ties them to their driver)
  and, for a local cluster this module started, every process of that cluster: Ray's own fate-sharing
  leaves its agents running after a kill -9 (measured with Ray 2.60), so a small reaper process, tied to
  the driver by a pipe, kills whatever the cluster left once the driver is gone. The next scan resumes.

Ray is an optional extra (`pip install viml[cluster]`), imported only here and only when asked for.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from viml.catalog import analysis
from viml.core.errors import UserFacingError

Task = Callable[..., object]
# What the driver forwards to every actor: the analysis spec (BUNDLE_ENV, RHYTHM_ENV), the models' home.
ENV_PREFIX = "VIML_"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise UserFacingError(
            "scanning on a Ray cluster needs Ray: pip install 'viml[cluster]' (or pip install ray)"
        ) from error
    return ray


# The reaper finds the local cluster's processes two ways: as descendants of the driver (polled while it
# lives; Ray's agents are the raylet's children) and by REAPER_ENV=<token> in /proc/<pid>/environ (set
# just before ray.init and inherited, for a process started after the last poll).
REAPER_ENV = "VIML_RAY_REAPER"
_REAPER = """
import os, select, signal, sys
from viml.core.processes import all_processes, descendants
driver, token = int(sys.argv[1]), ("%s=" % sys.argv[2] + sys.argv[3]).encode()

def has_token(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as handle:
            return token in handle.read().split(b"\\0")
    except OSError:
        return False

family = {}
def poll():
    table = all_processes()
    family.update(descendants(driver, table))
    return table

while not select.select([sys.stdin], [], [], 0.5)[0]:
    poll()
sys.stdin.buffer.read()  # end of file: the driver closed the pipe, or died (the kernel closed it)
for _ in range(5):  # a dying raylet may still start a process: sweep until none is left
    table, found = poll(), 0
    for pid, info in table.items():
        if pid == os.getpid():
            continue
        if family.get(pid) == info.started or has_token(pid):
            try:
                os.kill(pid, signal.SIGKILL)
                found += 1
            except OSError:
                pass
    if not found:
        break
"""


class _Reaper:
    """Kills every process of the local cluster once the driver is gone (or done), even after kill -9."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(8)
        env = {name: value for name, value in os.environ.items() if name != REAPER_ENV}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _REAPER, str(os.getpid()), REAPER_ENV, self.token],
            stdin=subprocess.PIPE, env=env, start_new_session=True,  # Ctrl-C to the scan spares it
        )  # fmt: skip

    def finish(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def forwarded_env() -> dict[str, str]:
    """The driver's VIML_* variables (the scan's bundle and rhythm switch among them) for the workers."""
    return {n: v for n, v in os.environ.items() if n.startswith(ENV_PREFIX) and n != REAPER_ENV}


class _Analyst:
    """One Ray actor: the scan's analyzer, loaded once, and the scan's per-file functions."""

    def __init__(self, spec: str, threads: int, env: dict[str, str]) -> None:
        # Set here rather than as a Ray runtime_env: that would start a separate worker pool per scan
        # (measured: ~10 s more start-up on a local cluster) for what is a handful of variables.
        os.environ.update(env)
        analysis.worker_init(spec, threads)

    def ready(self) -> bool:
        return True

    def run(self, name: str, argument: object) -> object:
        if not name.startswith("worker_"):  # only the scan's entry points, named (never code) by the driver
            raise ValueError(f"not a scan task: {name}")
        return getattr(analysis, name)(argument)


@dataclass
class _Actor:
    handle: Any
    ready: Any  # the ObjectRef of its ready() call: resolves once its analyzer is loaded
    task: tuple[Any, cf.Future, object] | None = None  # ObjectRef, future, argument


class RayExecutor:
    """Actors on a Ray cluster fed one task at a time each (as the local pool feeds its processes)."""

    def __init__(self, address: str | None, jobs: int | None, spec: str, threads: int = 1) -> None:
        ray = self._ray = import_ray()
        self._spec = spec
        self._threads = max(1, threads)
        self._owns_ray = False
        self._reaper: _Reaper | None = None
        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
            if address:
                options["address"] = address
            else:  # a new local cluster of this machine's cores (not one found running), ended with the scan
                options.update(address="local", num_cpus=analysis.usable_cores(), include_dashboard=False)
                if os.path.isdir("/proc/self"):
                    self._reaper = _Reaper()
                    os.environ[REAPER_ENV] = self._reaper.token  # inherited by every cluster process
            try:
                ray.init(**options)
            except Exception as error:  # ConnectionError, a bad address, a cluster of another version
                self._finish_reaper()
                raise UserFacingError(f"could not start or join the Ray cluster {address or '(local)'}: "
                                      f"{error.__class__.__name__}: {error}") from error  # fmt: skip
            self._owns_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, jobs or cpus // self._threads)
        self._remote = ray.remote(num_cpus=self._threads, max_restarts=0)(_Analyst)
        self._env = forwarded_env()
        self._backlog: collections.deque[tuple[cf.Future, Task, object]] = collections.deque()
        self._actors = [self._start() for _ in range(self.workers)]
        try:  # every analyzer loaded before the first file: a broken model fails no file
            ray.get([actor.ready for actor in self._actors])
        except Exception as error:
            self.shutdown()
            raise UserFacingError(f"the music model {spec!r} did not load on the Ray cluster: "
                                  f"{_cause(error)}") from error  # fmt: skip

    def _start(self) -> _Actor:
        handle = self._remote.remote(self._spec, self._threads, self._env)
        return _Actor(handle, handle.ready.remote())

    def submit(self, fn: Task, argument: object) -> cf.Future:
        future: cf.Future = cf.Future()
        self._backlog.append((future, fn, argument))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        for actor in self._actors:
            if actor.task is None and self._backlog:
                future, fn, argument = self._backlog.popleft()
                actor.task = (actor.handle.run.remote(fn.__name__, argument), future, argument)

    def wait(self) -> list[cf.Future]:
        """Block until at least one task is done; an actor's death finishes its task as a FileFailure."""
        ray = self._ray
        busy = {actor.task[0]: actor for actor in self._actors if actor.task is not None}
        finished, _ = ray.wait(list(busy), num_returns=1)
        rest = [ref for ref in busy if ref not in finished]
        more = ray.wait(rest, num_returns=len(rest), timeout=0)[0] if rest else []
        done = []
        for ref in [*finished, *more]:
            actor = busy[ref]
            assert actor.task is not None
            _, future, argument = actor.task
            actor.task = None
            try:
                future.set_result(ray.get(ref))
            except ray.exceptions.RayActorError as error:
                future.set_result(self._died(actor, argument, error))
            done.append(future)
        self._dispatch()
        return done

    def _died(self, actor: _Actor, argument: object, error: Exception) -> analysis.FileFailure:
        """The actor is gone: replace it, and fail its file unless it never loaded the analyzer."""
        ray = self._ray
        try:
            ray.get(actor.ready, timeout=0)
        except Exception as load_error:  # it died before or while loading: every file would fail
            raise UserFacingError(f"a Ray worker could not load the music model {self._spec!r}: "
                                  f"{_cause(load_error)}") from load_error  # fmt: skip
        from viml.catalog.scan import _crashed

        self._actors[self._actors.index(actor)] = self._start()
        return _crashed(argument, f"Ray worker lost: {_cause(error)}")

    def shutdown(self) -> None:
        ray = self._ray
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor.handle)
        self._actors = []
        self._backlog.clear()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
        self._finish_reaper()

    def _finish_reaper(self) -> None:
        if self._reaper is not None:
            os.environ.pop(REAPER_ENV, None)
            self._reaper.finish()
            self._reaper = None


def _cause(error: BaseException) -> str:
    """The first line of Ray's error text (its tracebacks run to dozens of lines)."""
    text = str(error).strip().splitlines()
    last = next((line for line in reversed(text) if line.strip() and not line.startswith(" ")), "")
    return last or error.__class__.__name__
