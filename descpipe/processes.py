"""The engine's processes: started in a session of their own, and all stopped when the run ends.

SIGINT, SIGTERM and SIGHUP to descpipe become an Interrupted exception where the run can stop, and
`stop_descendants` ends the engine and every process under it: its session, and (descpipe being
their subreaper) those that left it, such as a stage's double-forked daemon. Linux only: /proc.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from .run_lock import process_start

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Between SIGTERM and SIGKILL. Stages end at once on SIGTERM; cwltool's handler waits 10 s on a job
# it is already waiting on, so is killed after this. Neither engine needs it for --resume: cwltool
# marks a cache entry done only when its job succeeds, and Toil's job store survives a crash.
GRACE_SECONDS = 2.0
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


class Interrupted(BaseException):
    """descpipe was sent `signum`. A BaseException, so that no `except Exception` on the way up keeps it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """While in use, the first of SIGNALS raises Interrupted, or, inside `held()`, waits for `check()`.
    Later ones are ignored: descpipe is stopping already, and its cleanup must not be cut short."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._holding = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        for number in SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        if not self._holding:
            raise Interrupted(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep a signal from cutting the block short (it is raised by the next `check()`)."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1

    def check(self) -> None:
        """Raise Interrupted if a signal came while held."""
        if self.received is not None:
            raise Interrupted(self.received)


def become_subreaper() -> None:
    """Have processes orphaned below descpipe reparented to it, not to init, so they can be found."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def engine_preexec() -> None:
    """In the engine's process before exec: SIGTERM it should descpipe die without stopping it (SIGKILL),
    so that cwltool or Toil still stop their jobs."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:   # descpipe died before the line above
        os._exit(1)


def _table() -> dict[int, tuple[int, int, str, int]]:
    """Every process: pid -> (parent pid, process group, state, session), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0], int(fields[3]))
    return table


def _below(root: int, group: int | None) -> set[int]:
    """The live processes descended from `root`, and those in process group `group`."""
    table = _table()
    children: dict[int, list[int]] = {}
    for pid, (parent, *_) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    found |= {pid for pid, (_, pgid, *_) in table.items() if group is not None and pgid == group}
    found.discard(root)
    return {pid for pid in found if table.get(pid, (0, 0, "X"))[2] not in "ZX"}


def _reap(keep: int | None) -> None:
    """Collect descpipe's own exited children (orphans it adopted), but the engine's, which Popen collects."""
    for pid, (parent, _, state, _) in _table().items():
        if parent == os.getpid() and state == "Z" and pid != keep:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def stop_descendants(engine: int | None, grace: float = GRACE_SECONDS) -> int:
    """SIGTERM every process below descpipe and in the engine's group (`engine`, its pid, leads it),
    SIGKILL what is left after `grace` seconds; return how many there were."""
    me = os.getpid()
    targets = _below(me, engine)
    count = len(targets)
    for number, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        deadline = time.monotonic() + wait
        sent: set[int] = set()   # once each: a second SIGTERM would cut short the engine's own cleanup
        while targets and time.monotonic() < deadline:
            for pid in targets - sent:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, number)
            sent |= targets
            time.sleep(0.05)
            _reap(engine)
            # Again from the table: a process may have forked since.
            new = _below(me, engine)
            count += len(new - targets)
            targets = new
    return count


def stop_session(session: int, start: int | None) -> int:
    """SIGKILL what is left of a killed run's engine: the processes of `session`, which the engine led
    and which started at `start` (see run_lock). Return how many there were.

    Linux gives no new process a pid still in use as a session id, so while any of the engine's
    processes lives, `session` names them alone; once its leader is gone and the number reused by a
    new session leader (whose start time differs), nothing is stopped."""
    leader = process_start(session)
    if leader is not None and leader != start:
        return 0
    targets = {pid for pid, (*_, state, sid) in _table().items() if sid == session and state not in "ZX"}
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(
            sid == session and state not in "ZX" for *_, state, sid in _table().values()):
        time.sleep(0.05)
    return len(targets)
