"""Background work for the desktop app: QThreadPool tasks that report through signals.

Widgets never run long work themselves. A `Task` wraps a plain function `fn(token)` and runs it on the
global thread pool; the function reports progress through `token.progress(...)` and checks
`token.checkpoint()` often, which blocks while paused and raises `Cancelled` once cancelled.
`LatestOnly` keeps only the newest of a stream of queries (typing a prompt): older ones are cancelled
and their results dropped, so a stale answer never overwrites a fresh one.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal
from viml.core.errors import UserFacingError

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a task at a checkpoint after it was cancelled."""


class Token:
    """Cancellation, pause and progress for one task (thread-safe)."""

    def __init__(self, signals: TaskSignals | None = None) -> None:
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._signals = signals

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()  # wake a paused task so it can stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self) -> None:
        self._running.wait()
        if self._cancelled.is_set():
            raise Cancelled

    def progress(self, done: int, total: int, message: str = "") -> None:
        if self._signals is not None and not self.cancelled:
            self._signals.progress.emit(int(done), int(total), message)
        self.checkpoint()


class TaskSignals(QObject):
    progress = Signal(int, int, str)
    result = Signal(object)
    error = Signal(str)
    cancelled = Signal()
    finished = Signal()


class Task(QRunnable):
    """Run `fn(token)` off the GUI thread; exactly one of result/error/cancelled, then finished."""

    def __init__(self, fn: Callable[[Token], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.fn = fn
        self.signals = TaskSignals()
        self.token = Token(self.signals)

    def run(self) -> None:
        try:
            value = self.fn(self.token)
        except Cancelled:
            self.signals.cancelled.emit()
        except UserFacingError as error:
            self.signals.error.emit(str(error))
        except Exception as error:  # a bug must reach the user as a message, never kill the app
            log.error("background task failed:\n%s", traceback.format_exc())
            self.signals.error.emit(f"{type(error).__name__}: {error}")
        else:
            if self.token.cancelled:
                self.signals.cancelled.emit()
            else:
                self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()


def start(task: Task, pool: QThreadPool | None = None) -> Task:
    (pool or QThreadPool.globalInstance()).start(task)
    return task


_held: set[Task] = set()


def start_held(task: Task, pool: QThreadPool | None = None) -> Task:
    """Start a task whose owner may be deleted before it ends (a closed dialog, a widget in a test): held
    here until it has finished, since an unreferenced task's signals are deleted while it still emits."""
    _held.add(task)
    task.signals.finished.connect(lambda: _held.discard(task))
    return start(task, pool)


class LatestOnly(QObject):
    """Debounced runner where only the newest request's answer is delivered."""

    result = Signal(object)
    error = Signal(str)
    busy = Signal(bool)

    def __init__(self, debounce_ms: int = 200, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self, singleShot=True, interval=debounce_ms)
        self._timer.timeout.connect(self._launch)
        self._pending: Callable[[Token], Any] | None = None
        self._current: Task | None = None
        self._generation = 0
        self._running = 0

    def submit(self, fn: Callable[[Token], Any], immediately: bool = False) -> None:
        self._pending = fn
        if self._current is not None:
            self._current.token.cancel()
        if immediately:
            self._timer.stop()
            self._launch()
        else:
            self._timer.start()

    def cancel(self) -> None:
        self._timer.stop()
        self._pending = None
        if self._current is not None:
            self._current.token.cancel()
        self._generation += 1

    @property
    def running(self) -> bool:
        return self._running > 0 or self._timer.isActive()

    def _launch(self) -> None:
        if self._pending is None:
            return
        fn, self._pending = self._pending, None
        self._generation += 1
        generation = self._generation

        # The generation travels with the answer so that bound slots (queued into the GUI thread) can
        # drop answers to superseded requests; user-facing errors travel the same way.
        def tagged(token: Token) -> tuple[int, object, str | None]:
            try:
                return generation, fn(token), None
            except UserFacingError as error:
                return generation, None, str(error)

        task = Task(tagged)
        task.signals.result.connect(self._deliver)
        task.signals.error.connect(self.error)  # an unexpected failure is always worth showing
        task.signals.finished.connect(self._done)
        self._current = task
        self._running += 1
        self.busy.emit(True)
        start(task)

    def _deliver(self, tagged: tuple[int, object, str | None]) -> None:
        generation, value, message = tagged
        if generation != self._generation:
            return
        if message is not None:
            self.error.emit(message)
        else:
            self.result.emit(value)

    def _done(self) -> None:
        self._running -= 1
        if self._running == 0 and not self._timer.isActive():
            self.busy.emit(False)


def run_child(
    command: list[str],
    token: Token,
    on_line: Callable[[str], object] | None = None,
    on_tick: Callable[[], object] | None = None,
) -> tuple[int, bytes]:
    """Run `command` in a child process from a task: (exit status, its stdout). Cancellable: at the
    token's cancel the child is terminated and waited for, and Cancelled raised. Its stderr goes to
    `on_line` piece by piece (split at carriage returns too: progress bars redraw with them), and
    `on_tick()` runs every 0.2 s on the task's thread. Both pipes are read on threads of their own: a
    child that fills a pipe nobody reads blocks for good."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    output: list[bytes] = []

    def read_errors() -> None:
        pending = ""
        for chunk in iter(lambda: process.stderr.read1(4096), b""):
            pending += chunk.decode("utf-8", "replace")
            *pieces, pending = re.split(r"[\r\n]", pending)
            for piece in pieces:
                if on_line is not None:
                    on_line(piece)
        if on_line is not None and pending:
            on_line(pending)

    readers = [threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True),
               threading.Thread(target=read_errors, daemon=True)]  # fmt: skip
    for reader in readers:
        reader.start()
    try:
        while process.poll() is None:
            if on_tick is not None:
                on_tick()
            token.checkpoint()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.2)
    except Cancelled:
        process.terminate()
        process.wait()
        raise
    for reader in readers:
        reader.join()
    return process.returncode, b"".join(output)
