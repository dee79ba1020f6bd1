"""One `descpipe run` per working folder at a time.

The lock is an flock on `<working>/.descpipe.lock`, which the kernel releases however the run ends
(even SIGKILL), so a lock left by a killed run is taken over without asking. The file also records
the holder's pid and start time, to name the other run in the refusal, and to tell a lock file that
a killed run left (its pid gone, or reused by another process) from one of a run still going, and
the session of its engine, so that what a run killed with SIGKILL left running can be stopped.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import UserError

LOCK_FILE = ".descpipe.lock"


def process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); None if
    there is no such process. With the pid, it names one process: a pid can be reused, this pair not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


@dataclass
class RunLock:
    """The lock of a working folder, held; `stale` is what a killed run left in it, if it left a record."""

    file: Path
    record: dict[str, object]
    stale: dict[str, object] | None

    def engine_started(self, pid: int) -> None:
        """Record the engine's session (which its pid leads), for a run that finds this lock stale."""
        self.record["engine"] = {"session": pid, "start": process_start(pid)}
        self.file.write_text(json.dumps(self.record), encoding="utf-8")

    def describe_stale(self) -> str:
        """What became of the run the stale record names, for the person starting this one."""
        record = self.stale or {}
        pid, start = record.get("pid"), record.get("start")
        now = process_start(pid) if isinstance(pid, int) and pid > 0 else None
        fate = "gone" if now is None else "now another process" if now != start else "alive but no longer running"
        return f"{_describe(record)}; that pid is {fate}"


@contextmanager
def run_lock(working: Path, pipeline_file: Path) -> Iterator[RunLock]:
    """Hold the lock of `working` (creating the folder) while the block runs; refuse with one UserError
    if another run holds it."""
    try:
        working.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(working / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"cannot lock the working folder {working}: {e.strerror}", pipeline_file) from None
    with os.fdopen(descriptor, "r+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another descpipe run ({_describe(_read(lock.read()))}) is using the working folder {working}: "
                            "wait for it to end, or give this pipeline its own runtime.working",
                            pipeline_file) from None
        # The lock is ours: a record still in the file is that of a run that was killed.
        recorded = _read(lock.read())
        held = RunLock(working / LOCK_FILE, {"pid": os.getpid(), "start": process_start(os.getpid()),
                                             "started": datetime.now(timezone.utc).astimezone().isoformat(
                                                 timespec="seconds")}, recorded or None)
        lock.seek(0)
        lock.truncate()
        lock.write(json.dumps(held.record))
        lock.flush()
        try:
            yield held
        finally:
            # Emptied, not removed: removing it would let a run that opened it just before lock a
            # file no other run can see, and run beside a third.
            lock.seek(0)
            lock.truncate()
            lock.flush()
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(text: str) -> dict[str, object]:
    try:
        record = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _describe(record: dict[str, object]) -> str:
    if not record:
        return "which has not yet said its pid"
    return f"pid {record.get('pid')}, started {record.get('started')}"

