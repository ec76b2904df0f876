"""The supervisor of one command trial: a tiny stdlib-only process between a runner and its trial.

Run as ``python -I -S trial_supervisor.py <grace> <ended marker> <pid file> -- <argv...>`` by the
trial runner (see :mod:`nniray.actors.trial_runner`), with its stdin a pipe whose other end only
the runner holds.  It exists so that nothing a trial starts outlives the trial or its runner:

- on Linux it is a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``), so every process the
  trial starts, even one that calls ``setsid`` or double-forks, stays in its subtree;
- the trial runs in its own process group; when the trial's main process exits, every
  descendant still running is killed (SIGTERM, then SIGKILL after a short grace);
- SIGTERM from the runner (stop, ``maxTrialDuration``) is passed to every descendant, SIGKILL
  follows after ``grace`` seconds;
- if the runner dies (EOF on stdin: the kernel closed the pipe), every descendant is killed at
  once, so nothing keeps writing to a metrics file that nobody reads.

It first forks itself: the process the runner started only relays signals and the end of the
forked one, which does the work.  Ray SIGKILLs the *direct* children of a worker that exits,
so the worker's direct child cannot be the one that cleans up after the runner died.

The working process writes "<its pid> <trial pid>" to ``<pid file>`` once the trial started.  When all
descendants are gone it writes ``<ended marker>`` (so a reader recovering the trial's
metrics knows the file is complete) and exits with the trial's exit code (re-raising the
signal that killed the trial, so the runner sees the same status as for a direct child).

It imports nothing outside the standard library and is started with ``-I -S`` (~10 ms).
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
# /proc states of a process that is gone but still listed: zombie, dead (being released).
_DEAD_STATES = (b"Z", b"X", b"x")
# A trial's straggling descendants get this long after its main process exited.
STRAGGLER_GRACE = 2.0


def _set_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _direct(pid: int) -> list[int] | None:
    """Direct children of ``pid`` from its threads' ``children`` files (a few small reads; a
    scan of all of /proc costs ~1 ms per process on a loaded machine); None where the kernel
    has no such files."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # gone (or no /proc at all)
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except FileNotFoundError:
            if os.path.isdir(f"/proc/{pid}/task/{tid}"):
                return None  # CONFIG_PROC_CHILDREN is off
        except OSError:
            pass
    return out


def children(root: int) -> list[int]:
    """PIDs of the live direct children of ``root``."""
    kids = _direct(root)
    if kids is None:
        return _tree().get(root, [])
    return [p for p in kids if _alive(p)]


def descendants(root: int) -> list[int]:
    """PIDs of every live process below ``root`` (zombies excluded)."""
    out: list[int] = []
    todo, seen = [root], {root}
    while todo:
        kids = _direct(todo.pop())
        if kids is None:
            return _descendants_by_scan(root)
        for c in kids:
            if c not in seen:
                seen.add(c)
                todo.append(c)
                if _alive(c):
                    out.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in _DEAD_STATES


def _descendants_by_scan(root: int) -> list[int]:
    children = _tree()
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _tree() -> dict[int, list[int]]:
    """parent PID -> live child PIDs."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) < 2 or fields[0] in _DEAD_STATES:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def _signal_all(pids: list[int], sig: int) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


# Wait statuses of the processes reaped so far (the trial's main process among them).
_reaped: dict[int, int] = {}


def _reap() -> None:
    # Orphans of the trial are re-parented to us: collect them so they do not stay zombies.
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _reaped[pid] = status


def _signal_group(pgid: int | None, sig: int) -> None:
    if pgid is None:
        return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(root: int, grace: float, pgid: int | None = None) -> None:
    """SIGTERM every descendant of ``root`` (and the process group ``pgid``: all there is where
    /proc is missing), SIGKILL whatever is left after ``grace`` seconds."""
    if grace > 0:
        _signal_group(pgid, signal.SIGTERM)
        _signal_all(descendants(root), signal.SIGTERM)
        deadline = time.time() + grace
        while time.time() < deadline:
            _reap()
            if not descendants(root):
                return
            time.sleep(0.02)
    _signal_group(pgid, signal.SIGKILL)
    # Repeat: a process may fork between the listing and the kill.
    for _ in range(20):
        left = descendants(root)
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.01)
        _reap()
    _reap()


def main(argv: list[str]) -> int:
    """Fork the real supervisor and relay its end: Ray SIGKILLs a dead worker's *direct*
    children (``kill_child_processes_on_worker_exit``), which would leave the trial orphaned
    before it could be cleaned.  The forked supervisor is not a direct child of the runner: it
    outlives the runner long enough to see the lifeline's EOF and kill the trial's tree."""
    child = os.fork()
    if child == 0:
        try:
            if argv == ["--spare"]:
                argv = _configure_from_stdin()
                if argv is None:
                    os._exit(0)  # the runner went away before it needed this spare
            code = supervise(argv)
        except BaseException:  # noqa: BLE001 - report and exit; never return into the parent's code
            import traceback
            traceback.print_exc()
            code = 70
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig != signal.SIGKILL:
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.WEXITSTATUS(status)


def _configure_from_stdin() -> list[str] | None:
    """A *spare* supervisor is started ahead of its trial (its Python start is hidden behind
    the previous trial) and gets the trial as one JSON line on the lifeline:
    ``{argv, cwd, env, stdout, stderr}``; None on EOF (no trial came)."""
    import json
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(0, 65536)
        if not chunk:
            return None
        buf += chunk
    cfg = json.loads(buf[:buf.index(b"\n")])
    for fd, path in ((1, cfg["stdout"]), (2, cfg["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(out, fd)
        os.close(out)
    os.chdir(cfg["cwd"])
    os.environ.clear()
    os.environ.update(cfg["env"])
    return list(cfg["argv"])


def supervise(argv: list[str]) -> int:
    grace, marker = float(argv[0]), argv[1]
    cmd = argv[argv.index("--") + 1:]
    _set_subreaper()
    me = os.getpid()
    stop = {"requested": False}

    def on_term(signum: int, frame: object) -> None:
        stop["requested"] = True

    # Signals (SIGCHLD, SIGTERM) wake the select below through this pipe: no polling delay.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    # The trial reads /dev/null, not the runner's pipe (whose EOF is our "runner died" signal).
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    spawn = os.posix_spawn if os.path.isabs(cmd[0]) else os.posix_spawnp
    try:
        child = spawn(cmd[0], cmd, os.environ, file_actions=actions, setpgroup=0)
    except OSError as e:
        print(f"cannot start trial command: {e}", file=sys.stderr, flush=True)
        _write(marker)
        return 127
    if len(argv) > 2 and argv[2] != "--":
        _write(argv[2], f"{me} {child}")
    status = None
    runner_alive = True
    while status is None:
        if stop["requested"]:
            kill_tree(me, grace, child)
            stop["requested"] = False
        _reap()
        if child in _reaped:
            break
        try:
            ready, _, _ = select.select([0, wake_r] if runner_alive else [wake_r], [], [], 1.0)
        except InterruptedError:
            ready = []
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        if runner_alive and 0 in ready and not os.read(0, 4096):
            # The runner is gone: nobody will read what the trial writes from now on.
            runner_alive = False
            kill_tree(me, 0, child)
        _reap()
        status = _reaped.get(child)
    status = _reaped[child]
    # The trial's main process ended: whatever it left running goes too.
    kill_tree(me, STRAGGLER_GRACE if runner_alive else 0, child)
    _write(marker)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig != signal.SIGKILL:
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.kill(me, sig)
        return 128 + sig
    return os.WEXITSTATUS(status)


def _write(path: str, text: str | None = None) -> None:
    try:
        with open(path, "w") as f:
            f.write(f"{time.time() if text is None else text}\n")
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
