"""``nniray``: NNI's ``nnictl`` verbs for nniray experiments.

Exit codes: 0 ok, 1 user error (bad config, unknown id, experiment not running...), 2 usage.
Every error is one ``ERROR: ...`` line on stderr, never a traceback (``NNIRAY_DEBUG=1`` shows
tracebacks of unexpected failures).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

from .errors import CliError

DEFAULT_PORT = 8080


def _cmd(module: str, func: str) -> Callable[[Any], int]:
    """Import a command's module only when it runs (``nniray trial ls`` must not load Ray)."""
    def run(args: Any) -> int:
        import importlib
        return getattr(importlib.import_module(f"nniray.cli.{module}"), func)(args)
    return run


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return n


def _port(text: str) -> int:
    n = _positive_int(text)
    if n > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (1-65535), got {text!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    import nniray
    p = argparse.ArgumentParser(prog="nniray", description="nniray: NNI's experiment command line (nnictl) on Ray.")
    p.add_argument("--version", "-v", action="version", version=nniray.__version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("create", help="create and start an experiment from a YAML config")
    c.add_argument("--config", "-c", required=True, help="experiment YAML (NNI v2 schema)")
    c.add_argument("--port", "-p", type=_port, default=DEFAULT_PORT, help="REST/web UI port (default 8080)")
    c.add_argument("--debug", "-d", action="store_true", help="debug mode (verbose daemon log)")
    c.add_argument("--foreground", "-f", action="store_true", help="run in this terminal, showing progress")
    c.set_defaults(func=_cmd("launch", "create"))

    r = sub.add_parser("resume", help="resume a stopped experiment")
    r.add_argument("id")
    r.add_argument("--port", "-p", type=_port, default=DEFAULT_PORT)
    r.add_argument("--debug", "-d", action="store_true")
    r.add_argument("--foreground", "-f", action="store_true")
    r.add_argument("--experiment_dir", "-e", help="the experiment's folder when it is not in the registry")
    r.set_defaults(func=_cmd("launch", "resume"))

    v = sub.add_parser("view", help="serve a stopped experiment read-only")
    v.add_argument("id")
    v.add_argument("--port", "-p", type=_port, default=DEFAULT_PORT)
    v.add_argument("--experiment_dir", "-e")
    v.set_defaults(func=_cmd("launch", "view"))

    s = sub.add_parser("stop", help="stop running experiments (id, id prefix, 'abc*', --port or --all)")
    s.add_argument("id", nargs="?")
    s.add_argument("--port", "-p", type=_port)
    s.add_argument("--all", "-a", action="store_true")
    s.set_defaults(func=_cmd("launch", "stop"))

    u = sub.add_parser("update", help="change a running experiment")
    usub = u.add_subparsers(dest="update_kind", metavar="WHAT")
    usub.required = True
    us = usub.add_parser("searchspace", help="replace the search space")
    us.add_argument("id", nargs="?")
    us.add_argument("--filename", "-f", required=True, help="search space JSON file")
    for kind, helptext in (("concurrency", "trialConcurrency"), ("duration", "maxExperimentDuration, e.g. 2h"),
                           ("trialnum", "maxTrialNumber")):
        x = usub.add_parser(kind, help=f"set {helptext}")
        x.add_argument("id", nargs="?")
        x.add_argument("--value", "-v", required=True)
    for x in usub.choices.values():
        x.set_defaults(func=_cmd("update_cmds", "update"))

    t = sub.add_parser("trial", help="list or kill trials")
    tsub = t.add_subparsers(dest="trial_cmd", metavar="ACTION")
    tsub.required = True
    tl = tsub.add_parser("ls", help="list trials")
    tl.add_argument("id", nargs="?")
    tl.add_argument("--head", type=int, help="the N best completed trials (by the default metric)")
    tl.add_argument("--tail", type=int, help="the N worst completed trials")
    tl.add_argument("--json", action="store_true", help="print NNI's TrialJobInfo JSON instead of a table")
    tl.set_defaults(func=_cmd("trial_cmds", "ls"))
    tk = tsub.add_parser("kill", help="kill a running trial")
    tk.add_argument("id", nargs="?")
    tk.add_argument("--trial_id", "-T", required=True)
    tk.set_defaults(func=_cmd("trial_cmds", "kill"))

    tp = sub.add_parser("top", help="monitor running experiments")
    tp.add_argument("id", nargs="?")
    tp.add_argument("--time", "-t", type=float, default=3.0, help="refresh interval in seconds (default 3)")
    tp.add_argument("--iterations", "-n", type=_positive_int, help="stop after N refreshes")
    tp.set_defaults(func=_cmd("top", "top"))

    e = sub.add_parser("experiment", help="show, list, export, import or delete experiments")
    esub = e.add_subparsers(dest="experiment_cmd", metavar="ACTION")
    esub.required = True
    for name, func, helptext in (("show", "show", "the experiment's profile"),
                                 ("status", "status", "the experiment's status")):
        x = esub.add_parser(name, help=helptext)
        x.add_argument("id", nargs="?")
        x.set_defaults(func=_cmd("experiment_cmds", func))
    el = esub.add_parser("list", help="running experiments (--all: every experiment)")
    el.add_argument("--all", action="store_true")
    el.set_defaults(func=_cmd("experiment_cmds", "list_"))
    ed = esub.add_parser("delete", help="delete an experiment's data (not a running one)")
    ed.add_argument("id", nargs="?")
    ed.add_argument("--all", action="store_true")
    ed.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    ed.set_defaults(func=_cmd("experiment_cmds", "delete"))
    ex = esub.add_parser("export", help="export trial parameters and results (csv or json)")
    ex.add_argument("id", nargs="?")
    ex.add_argument("--filename", "-f", required=True)
    ex.add_argument("--type", required=True, choices=("json", "csv"))
    ex.add_argument("--intermediate", "-i", action="store_true", help="include intermediate results")
    ex.set_defaults(func=_cmd("experiment_cmds", "export"))
    ei = esub.add_parser("import", help="feed prior results to the tuner of a running experiment")
    ei.add_argument("id", nargs="?")
    ei.add_argument("--filename", "-f", required=True, help='JSON list of {"parameter": {...}, "value": ...}')
    ei.set_defaults(func=_cmd("experiment_cmds", "import_"))
    es = esub.add_parser("save", help="pack a stopped experiment (and optionally its code) into a zip")
    es.add_argument("id", nargs="?")
    es.add_argument("--path", "-p", help="folder of the package (default: the current folder)")
    es.add_argument("--saveCodeDir", "-s", action="store_true", help="include the trial code folder")
    es.set_defaults(func=_cmd("package_cmds", "save"))
    eld = esub.add_parser("load", help="unpack a package written by `experiment save`")
    eld.add_argument("--path", "-p", required=True, help="the package file")
    eld.add_argument("--codeDir", "-c", help="where the trial code goes (required when the package has code)")
    eld.add_argument("--logDir", "-l", help="experiments folder (default ~/nni-experiments)")
    eld.add_argument("--searchSpacePath", "-s", help="search space JSON (default: <codeDir>/search_space.json)")
    eld.set_defaults(func=_cmd("package_cmds", "load"))

    lg = sub.add_parser("log", help="daemon stdout/stderr, or a trial's log")
    lsub = lg.add_subparsers(dest="log_kind", metavar="WHICH")
    lsub.required = True
    for kind in ("stdout", "stderr"):
        x = lsub.add_parser(kind, help=f"the experiment daemon's {kind}")
        x.add_argument("id", nargs="?")
        x.add_argument("--head", "-H", type=int, help="first N lines")
        x.add_argument("--tail", "-t", type=int, help="last N lines")
        x.add_argument("--path", "-p", action="store_true", help="print the file's path only")
        x.set_defaults(func=_cmd("log_cmds", "log"))
    ltr = lsub.add_parser("trial", help="a trial's log folder and the end of its trial.log and stderr")
    ltr.add_argument("id", nargs="?")
    ltr.add_argument("--trial_id", "-T")
    ltr.add_argument("--lines", "-n", type=_positive_int, default=20, help="lines of each file (default 20)")
    ltr.set_defaults(func=_cmd("trial_cmds", "log_trial"))

    a = sub.add_parser("algo", help="register, list, show or unregister algorithms")
    asub = a.add_subparsers(dest="algo_cmd", metavar="ACTION")
    asub.required = True
    ar = asub.add_parser("register", help="register a custom tuner/assessor/advisor")
    ar.add_argument("--meta", "-m", required=True, help="meta YAML: algoType, builtinName, className[, classArgsValidator]")
    ar.set_defaults(func=_cmd("algo_cmds", "register"))
    asub.add_parser("list", help="every algorithm").set_defaults(func=_cmd("algo_cmds", "list_"))
    ash = asub.add_parser("show", help="one algorithm")
    ash.add_argument("name")
    ash.set_defaults(func=_cmd("algo_cmds", "show"))
    au = asub.add_parser("unregister", help="remove a user-registered algorithm")
    au.add_argument("name")
    au.set_defaults(func=_cmd("algo_cmds", "unregister"))

    w = sub.add_parser("webui", help="web UI address")
    wsub = w.add_subparsers(dest="webui_cmd", metavar="ACTION")
    wsub.required = True
    wu = wsub.add_parser("url", help="the web UI / REST URL of a running experiment")
    wu.add_argument("id", nargs="?")
    wu.set_defaults(func=_cmd("experiment_cmds", "webui_url"))

    pl = sub.add_parser("platform", help="clean what nniray left on a platform")
    plsub = pl.add_subparsers(dest="platform_cmd", metavar="ACTION")
    plsub.required = True
    pc = plsub.add_parser("clean", help="remove nniray's leftovers on the config's platform")
    pc.add_argument("--config", "-c", required=True)
    pc.set_defaults(func=_cmd("package_cmds", "platform_clean"))

    tb = sub.add_parser("tensorboard", help="TensorBoard over the trials' NNI_OUTPUT_DIR/tensorboard")
    tbsub = tb.add_subparsers(dest="tensorboard_cmd", metavar="ACTION")
    tbsub.required = True
    tbs = tbsub.add_parser("start", help="start TensorBoard for an experiment")
    tbs.add_argument("id", nargs="?")
    tbs.add_argument("--port", type=_port, default=6006)
    tbs.set_defaults(func=_cmd("package_cmds", "tensorboard_start"))
    tbt = tbsub.add_parser("stop", help="stop it")
    tbt.add_argument("id", nargs="?")
    tbt.set_defaults(func=_cmd("package_cmds", "tensorboard_stop"))

    cf = sub.add_parser("config", help="convert an NNI v1 config, or show an experiment's config")
    cfsub = cf.add_subparsers(dest="config_cmd", metavar="ACTION")
    cfsub.required = True
    cc = cfsub.add_parser("convert", help="write the v2 file of an NNI legacy v1 config")
    cc.add_argument("--config", "-c", required=True, help="the v1 YAML")
    cc.add_argument("--output", "-o", help="the v2 YAML to write (default: <name>_v2.yml beside it)")
    cc.add_argument("--force", action="store_true", help="overwrite the output file")
    cc.set_defaults(func=_cmd("config_cmds", "convert"))
    cs = cfsub.add_parser("show", help="the config of an experiment (the current one by default)")
    cs.add_argument("id", nargs="?")
    cs.set_defaults(func=_cmd("config_cmds", "show"))

    sg = sub.add_parser("ss_gen", help="generate the search space of an annotated trial")
    sg.add_argument("--trial_command", "-t", required=True, help="the trial command (recorded in the message)")
    sg.add_argument("--trial_dir", "-d", default="./", help="the trial code folder (default ./)")
    sg.add_argument("--file", "-f", default="nni_auto_gen_search_space.json", help="output JSON file")
    sg.set_defaults(func=_cmd("config_cmds", "ss_gen"))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2 (argparse)
    try:
        code = args.func(args)
    except CliError as e:
        print(f"ERROR: {' '.join(str(e).split())}", file=sys.stderr)  # always one line
        return 1
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nniray trial ls | head`: the reader left, which is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug of ours: still one line, with a way to see more
        if os.environ.get("NNIRAY_DEBUG"):
            raise
        print(f"ERROR: {type(e).__name__}: {' '.join(str(e).split())} (set NNIRAY_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
