"""``nniray experiment save|load``, ``nniray platform clean`` and ``nniray tensorboard start|stop``.

* ``experiment save ID [--path DIR] [--saveCodeDir]`` packs a stopped experiment's folder (store,
  logs, trial folders) into ``DIR/nniray_experiment_<id>.zip``, with the trial code folder when
  ``--saveCodeDir`` is given, plus a manifest with its registry entry.
* ``experiment load --path ZIP [--codeDir DIR] [--logDir DIR] [--searchSpacePath FILE]`` unpacks
  it under ``logDir`` (default ``~/nni-experiments``), the code into ``codeDir`` (required when
  the package has code, as NNI's), points the stored config at them and registers the
  experiment as STOPPED, ready for ``view`` or ``resume``.
* ``platform clean --config YAML``: for ``local``, removes this user's leftover annotation
  copies (``/tmp/nniray-annotation-*``); other platforms have no launcher yet and are refused.
* ``tensorboard start [ID] [--port]`` serves TensorBoard over every trial's
  ``NNI_OUTPUT_DIR/tensorboard`` folder; ``tensorboard stop [ID]`` stops it.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from nniray.storage import ExperimentStore, default_registry

from . import locate
from .console import info
from .errors import CliError

MANIFEST = "nniray_manifest.json"


def _zip_dir(zf: zipfile.ZipFile, folder: Path, prefix: str) -> int:
    n = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            full = Path(root) / name
            if full.is_symlink():
                continue  # a link may point anywhere: never pack what it points to
            zf.write(full, f"{prefix}/{full.relative_to(folder).as_posix()}")
            n += 1
    return n


def save(args: Any) -> int:
    exp_id = locate.resolve(args.id)
    entry = locate.refreshed().get(exp_id) or {}
    if locate.is_running(entry):
        raise CliError(f"experiment {exp_id} is running; `nniray stop {exp_id}` first (its store is being written)")
    exp_dir = locate.experiment_dir(exp_id)
    store = ExperimentStore(exp_dir, readonly=True)
    cfg = store.get_meta("config") or {}
    store.close()
    out_dir = Path(args.path or ".").expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"nniray_experiment_{exp_id}.zip"
    code_dir = Path(cfg.get("trialCodeDirectory") or ".")
    if args.saveCodeDir and not code_dir.is_dir():
        raise CliError(f"--saveCodeDir: the experiment's trialCodeDirectory {code_dir} does not exist any more")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        n = _zip_dir(zf, exp_dir, "experiment")
        if args.saveCodeDir:
            n += _zip_dir(zf, code_dir, "code")
        zf.writestr(MANIFEST, json.dumps({"id": exp_id, "registry": entry, "withCode": bool(args.saveCodeDir),
                                          "config": cfg}, indent=1))
    info(f"Saved experiment {exp_id} ({n} files{', with its code' if args.saveCodeDir else ''}) to {out}")
    return 0


def _safe_extract(zf: zipfile.ZipFile, prefix: str, dest: Path) -> None:
    dest = dest.resolve()
    for member in zf.infolist():
        if not member.filename.startswith(prefix + "/") or member.is_dir():
            continue
        target = (dest / member.filename[len(prefix) + 1:]).resolve()
        if dest not in target.parents:
            raise CliError(f"the package has an unsafe path {member.filename!r}; not loading it")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)


def load(args: Any) -> int:
    pkg = Path(args.path).expanduser()
    if not zipfile.is_zipfile(pkg):
        raise CliError(f"--path: {pkg} is not a package written by `nniray experiment save`")
    with zipfile.ZipFile(pkg) as zf:
        try:
            manifest = json.loads(zf.read(MANIFEST))
        except KeyError:
            raise CliError(f"--path: {pkg} has no {MANIFEST}; it was not written by `nniray experiment save`") from None
        exp_id = manifest["id"]
        if default_registry().get(exp_id):
            raise CliError(f"experiment {exp_id} is already known here (`nniray experiment list --all`); "
                           f"`nniray experiment delete {exp_id}` first to replace it")
        root = Path(args.logDir or locate.DEFAULT_ROOT).expanduser().resolve()
        exp_dir = root / exp_id
        if exp_dir.exists():
            raise CliError(f"{exp_dir} exists; choose another --logDir")
        if manifest.get("withCode") and not args.codeDir:
            raise CliError("--codeDir is required: the package contains the trial code, give the folder to put it in")
        _safe_extract(zf, "experiment", exp_dir)
        code_dir = Path(args.codeDir).expanduser().resolve() if args.codeDir else None
        if code_dir is not None and manifest.get("withCode"):
            _safe_extract(zf, "code", code_dir)
    store = ExperimentStore(exp_dir)
    cfg = dict(store.get_meta("config") or {})
    if code_dir is not None:
        cfg["trialCodeDirectory"] = str(code_dir)
    cfg["experimentWorkingDirectory"] = str(root)
    space_file = args.searchSpacePath or (str(code_dir / "search_space.json") if code_dir and
                                          (code_dir / "search_space.json").exists() else None)
    if space_file:
        try:
            space = json.loads(Path(space_file).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CliError(f"--searchSpacePath: cannot read {space_file} ({e})") from None
        cfg.pop("searchSpaceFile", None)
        cfg["searchSpace"] = space
        store.set_meta("search_space", space)
    store.set_meta("config", cfg)
    store.close()
    old = manifest.get("registry") or {}
    default_registry().update(exp_id, experimentName=cfg.get("experimentName"), logDir=str(exp_dir), status="STOPPED",
                              platform=old.get("platform", "local"), startTime=old.get("startTime"),
                              endTime=old.get("endTime"), pid=None, port=None)
    info(f"Loaded experiment {exp_id} into {exp_dir}" + (f", code in {code_dir}" if code_dir else "")
         + f"; `nniray view {exp_id}` or `nniray resume {exp_id}`")
    return 0


def platform_clean(args: Any) -> int:
    from nniray.config import ConfigError, load_config
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        raise CliError(f"{args.config}: {e}") from None
    platforms = cfg.platforms
    if platforms != ["local"]:
        raise CliError(f"platform clean: {', '.join(platforms)} has no launcher in nniray yet, so nothing of "
                       f"nniray's is on it to clean")
    removed = 0
    for d in glob.glob(os.path.join(tempfile.gettempdir(), "nniray-annotation-*")):
        try:
            if os.stat(d).st_uid == os.getuid():
                shutil.rmtree(d)
                removed += 1
        except OSError:
            continue
    info(f"Cleaned the local platform: removed {removed} temporary annotation code cop{'y' if removed == 1 else 'ies'}")
    return 0


# --------------------------------------------------------------------------------- tensorboard
def _tb_dirs(exp_dir: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in sorted((exp_dir / "trials").glob("*/tensorboard")) if p.is_dir()}


def tensorboard_start(args: Any) -> int:
    exp_id = locate.resolve(args.id)
    entry = default_registry().get(exp_id) or {}
    if entry.get("tensorboardPid") and locate.owner_alive({"pid": entry["tensorboardPid"],
                                                             "startTime": entry.get("tensorboardStart")}):
        raise CliError(f"TensorBoard of experiment {exp_id} already runs at http://127.0.0.1:{entry['tensorboardPort']} "
                       f"(`nniray tensorboard stop {exp_id}` first)")
    exp_dir = locate.experiment_dir(exp_id)
    dirs = _tb_dirs(exp_dir)
    if not dirs:
        raise CliError(f"no trial of experiment {exp_id} has a tensorboard folder: trials write TensorBoard logs to "
                       f"os.path.join(os.environ['NNI_OUTPUT_DIR'], 'tensorboard')")
    spec = ",".join(f"{name}:{path}" for name, path in dirs.items())
    log = exp_dir / "log" / "tensorboard.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec, "--port", str(args.port),
           "--host", "127.0.0.1"]
    started = time.time()
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    time.sleep(0.5)
    if proc.poll() is not None:
        raise CliError(f"TensorBoard exited at once (code {proc.returncode}); see {log}")
    default_registry().update(exp_id, tensorboardPid=proc.pid, tensorboardPort=args.port, tensorboardStart=started)
    info(f"TensorBoard for {len(dirs)} trials of experiment {exp_id}: http://127.0.0.1:{args.port} (log {log})")
    return 0


def tensorboard_stop(args: Any) -> int:
    exp_id = locate.resolve(args.id)
    entry = default_registry().get(exp_id) or {}
    pid = entry.get("tensorboardPid")
    if not pid or not locate.owner_alive({"pid": pid, "startTime": entry.get("tensorboardStart")}):
        default_registry().update(exp_id, tensorboardPid=None, tensorboardPort=None)
        raise CliError(f"no TensorBoard of experiment {exp_id} is running")
    os.killpg(int(pid), signal.SIGTERM)
    deadline = time.time() + 10
    while locate.pid_alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    if locate.pid_alive(pid):
        os.killpg(int(pid), signal.SIGKILL)
    default_registry().update(exp_id, tensorboardPid=None, tensorboardPort=None)
    info(f"Stopped TensorBoard of experiment {exp_id}")
    return 0
