"""Rewrite NNI-annotated Python and generate its search space.

An annotation is a statement that is only a string literal starting with ``@nni.``.  Rules
(NNI's): ``@nni.variable(<sampler>, name=<var>)`` and ``@nni.function_choice(<call>, ...,
name=<f>)`` apply to the *next* statement, which must be an assignment whose left-hand side is
``<var>`` (for ``function_choice``: any assignment, whose right-hand side is replaced by the
chosen call); anything else is an :class:`AnnotationError` naming the file and line.
``@nni.report_intermediate_result(x)`` / ``@nni.report_final_result(x)`` /
``@nni.get_next_parameter()`` become the calls themselves.

Search-space keys are ``<module>/<name>`` with the module path relative to the code directory
(``mnist`` for ``mnist.py``, ``pkg/train`` for ``pkg/train.py``), as NNI names them.  A
``choice`` whose options are all literals lists their values; otherwise (expressions, or
``function_choice``) the options' source text.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

SAMPLERS = {"choice": None, "randint": 2, "uniform": 2, "quniform": 3, "loguniform": 2, "qloguniform": 3,
            "normal": 2, "qnormal": 3, "lognormal": 2, "qlognormal": 3}
MAX_FILES = 2000  # NNI's limit on a code directory it copies
_RT = "_nniray_annotation"


class AnnotationError(ValueError):
    """An annotation that cannot be used; the message names the file, the line and the rule."""


def _is_annotation(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str) and stmt.value.value.strip().startswith("@nni."))


def _parse_annotation(stmt: ast.Expr, where: str) -> ast.Call:
    text = stmt.value.value.strip()[1:]
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise AnnotationError(f"{where}: annotation {text!r} is not valid Python ({e.msg})") from None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "nni"):
        raise AnnotationError(f"{where}: {text!r} is not an nni annotation call such as @nni.variable(...)")
    return node


def _name_kw(call: ast.Call, where: str) -> str:
    for kw in call.keywords:
        if kw.arg == "name":
            if isinstance(kw.value, ast.Name):
                return kw.value.id
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                return kw.value.value
    raise AnnotationError(f"{where}: @nni.{call.func.attr} needs name=<variable>, e.g. name=learning_rate")


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return False, None


def _lambda(expr: ast.expr) -> ast.Lambda:
    return ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                                         kwarg=None, defaults=[]), body=expr)


def _rt_call(func: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Attribute(value=ast.Name(id=_RT, ctx=ast.Load()), attr=func, ctx=ast.Load()),
                    args=args, keywords=[])


class _Rewriter:
    def __init__(self, module: str, filename: str):
        self.module, self.filename = module, filename
        self.space: dict[str, dict] = {}
        self.used = False

    def where(self, node: ast.AST) -> str:
        return f"{self.filename}:{getattr(node, 'lineno', '?')}"

    def rewrite_body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        i = 0
        while i < len(body):
            stmt = body[i]
            if not _is_annotation(stmt):
                self.rewrite_children(stmt)
                out.append(stmt)
                i += 1
                continue
            call = _parse_annotation(stmt, self.where(stmt))
            kind = call.func.attr
            if kind in ("report_intermediate_result", "report_final_result", "get_next_parameter",
                        "get_current_parameter", "send_metric"):
                func = "report_final_result" if kind == "send_metric" else kind
                out.append(ast.Expr(value=ast.Call(
                    func=ast.Attribute(value=ast.Name(id="_nniray", ctx=ast.Load()), attr=func, ctx=ast.Load()),
                    args=call.args, keywords=[k for k in call.keywords if k.arg != "name"])))
                self.used = True
                i += 1
                continue
            if kind not in ("variable", "function_choice"):
                raise AnnotationError(f"{self.where(stmt)}: unknown annotation @nni.{kind}; use variable, "
                                      f"function_choice, report_intermediate_result or report_final_result")
            name = _name_kw(call, self.where(stmt))
            nxt = body[i + 1] if i + 1 < len(body) else None
            if not (isinstance(nxt, ast.Assign) and len(nxt.targets) == 1):
                raise AnnotationError(f"{self.where(stmt)}: the line after @nni.{kind}(..., name={name}) must be an "
                                      f"assignment (NNI's rule), e.g. `{name} = ...`")
            target = ast.unparse(nxt.targets[0])
            if kind == "variable" and target != name:
                raise AnnotationError(f"{self.where(nxt)}: @nni.variable(..., name={name}) must be followed by an "
                                      f"assignment to {name!r} (NNI's rule), got `{target} = ...`")
            key = f"{self.module}/{name}"
            if key in self.space:
                raise AnnotationError(f"{self.where(stmt)}: {key!r} is annotated twice; names must be unique per file")
            nxt.value = (self._variable(call, key, nxt.value, stmt) if kind == "variable"
                         else self._function_choice(call, key, nxt.value, stmt))
            self.used = True
            out.append(nxt)
            i += 2
        return out

    def rewrite_children(self, stmt: ast.stmt) -> None:
        for field in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(stmt, field, self.rewrite_body(block))
        for handler in getattr(stmt, "handlers", []) or []:
            handler.body = self.rewrite_body(handler.body)
        for case in getattr(stmt, "cases", []) or []:
            case.body = self.rewrite_body(case.body)

    def _variable(self, call: ast.Call, key: str, original: ast.expr, stmt: ast.stmt) -> ast.expr:
        positional = [a for a in call.args]
        if len(positional) != 1:
            raise AnnotationError(f"{self.where(stmt)}: @nni.variable takes one sampler, e.g. "
                                  f"@nni.variable(nni.choice(1, 2), name=x)")
        sampler = positional[0]
        if not (isinstance(sampler, ast.Call) and isinstance(sampler.func, ast.Attribute)
                and isinstance(sampler.func.value, ast.Name) and sampler.func.value.id == "nni"
                and sampler.func.attr in SAMPLERS):
            raise AnnotationError(f"{self.where(stmt)}: the sampler must be one of "
                                  f"{', '.join('nni.' + s for s in SAMPLERS)}, got {ast.unparse(sampler)!r}")
        t = sampler.func.attr
        if t == "choice":
            lits = [_literal(a) for a in sampler.args]
            if not sampler.args:
                raise AnnotationError(f"{self.where(stmt)}: nni.choice needs at least one option")
            labels = [v for _, v in lits] if all(ok for ok, _ in lits) else [ast.unparse(a) for a in sampler.args]
            self.space[key] = {"_type": "choice", "_value": labels}
            return _rt_call("choice", [ast.Constant(key), ast.Tuple([_lambda(a) for a in sampler.args], ast.Load()),
                                       ast.Constant(tuple(labels)) if all(ok for ok, _ in lits) else
                                       ast.Tuple([ast.Constant(s) for s in labels], ast.Load()),
                                       _lambda(original)])
        values = []
        for a in sampler.args:
            ok, v = _literal(a)
            if not ok or isinstance(v, bool) or not isinstance(v, (int, float)):
                raise AnnotationError(f"{self.where(stmt)}: nni.{t} takes numbers, got {ast.unparse(a)!r}")
            values.append(v)
        if len(values) != SAMPLERS[t]:
            raise AnnotationError(f"{self.where(stmt)}: nni.{t} takes {SAMPLERS[t]} numbers, got {len(values)}")
        self.space[key] = {"_type": t, "_value": values}
        return _rt_call("variable", [ast.Constant(key), _lambda(original)])

    def _function_choice(self, call: ast.Call, key: str, original: ast.expr, stmt: ast.stmt) -> ast.expr:
        if not call.args or not all(isinstance(a, ast.Call) for a in call.args):
            raise AnnotationError(f"{self.where(stmt)}: @nni.function_choice takes whole calls, e.g. "
                                  f"@nni.function_choice(max_pool(x), avg_pool(x), name=pool)")
        labels = [ast.unparse(a) for a in call.args]
        self.space[key] = {"_type": "choice", "_value": labels}
        return _rt_call("choice", [ast.Constant(key), ast.Tuple([_lambda(a) for a in call.args], ast.Load()),
                                   ast.Tuple([ast.Constant(s) for s in labels], ast.Load()), _lambda(original)])


def rewrite_source(source: str, module: str, filename: str = "<string>") -> tuple[str | None, dict]:
    """``(new source, search space)`` for one file; ``(None, {})`` when it has no annotation."""
    if "@nni." not in source:
        return None, {}
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise AnnotationError(f"{filename}:{e.lineno}: not valid Python ({e.msg})") from None
    rw = _Rewriter(module, filename)
    tree.body = rw.rewrite_body(tree.body)
    if not rw.used:
        return None, {}
    # after a module docstring and `from __future__` imports, which must stay first
    pos = 0
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(getattr(tree.body[0], "value", None), ast.Constant):
        pos = 1
    while pos < len(tree.body) and isinstance(tree.body[pos], ast.ImportFrom) and tree.body[pos].module == "__future__":
        pos += 1
    header = ast.parse(f"import nniray as _nniray\nimport nniray.annotation.runtime as {_RT}\n").body
    tree.body[pos:pos] = header
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n", rw.space


def _py_files(code_dir: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(code_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for n in names:
            files.append(Path(root) / n)
            if len(files) > MAX_FILES:
                raise AnnotationError(f"trialCodeDirectory {code_dir} has more than {MAX_FILES} files; annotation "
                                      f"copies the folder, so point trialCodeDirectory at the trial's own code")
    return [f for f in files if f.suffix == ".py"]


def _module(path: Path, code_dir: Path) -> str:
    return path.relative_to(code_dir).with_suffix("").as_posix()


def generate_search_space(code_dir: str | os.PathLike) -> dict:
    """The search space the annotations under ``code_dir`` define."""
    code_dir = Path(code_dir)
    space: dict[str, dict] = {}
    for f in _py_files(code_dir):
        _, sub = rewrite_source(f.read_text(encoding="utf-8", errors="replace"), _module(f, code_dir), str(f))
        space.update(sub)
    return space


def expand_annotations(code_dir: str | os.PathLike, dst_dir: str | os.PathLike | None = None) -> tuple[str, dict]:
    """Copy ``code_dir`` to ``dst_dir`` (default: a new temporary folder) with every annotated
    file rewritten; returns ``(the copy, the search space)``.  The space is also written to
    ``nni_auto_gen_search_space.json`` in the copy."""
    code_dir = Path(code_dir).resolve()
    files = _py_files(code_dir)
    dst = Path(dst_dir) if dst_dir else Path(tempfile.mkdtemp(prefix="nniray-annotation-"))
    shutil.copytree(code_dir, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".git"))
    space: dict[str, dict] = {}
    for f in files:
        new, sub = rewrite_source(f.read_text(encoding="utf-8", errors="replace"), _module(f, code_dir), str(f))
        if new is not None:
            (dst / f.relative_to(code_dir)).write_text(new, encoding="utf-8")
            space.update(sub)
    if not space:
        raise AnnotationError(f"useAnnotation is true but no @nni.variable/@nni.function_choice annotation was found "
                              f"under {code_dir}")
    (dst / "nni_auto_gen_search_space.json").write_text(json.dumps(space, indent=2))
    return str(dst), space
