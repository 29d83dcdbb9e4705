"""Records tests/api/recorded/signatures.json from real PyTorch 2.13 (not run by the suite):
    /tmp/torchvenv/bin/python tests/api/recorded/record_signatures.py > tests/api/recorded/signatures.json

The keyword names PyTorch accepts for each public function and Tensor method. A function
written in Python: inspect.signature. A builtin: its overloads in the type stubs PyTorch
generates from its argument parser (torch/_C/_VariableFunctions.pyi, class TensorBase in
torch/_C/__init__.pyi, torch/_C/_nn.pyi), which name what the parser accepts (the
docstrings do not always: `Tensor.mul(value)` is documented, `mul(other=)` is parsed);
failing both, the signature lines of its docstring. The stubs are not always right either
(`from_numpy(ndarray=)` is refused, `requires_grad_(mode=)` is `requires_grad=`), so each
keyword of a builtin is then tried once on the builtin itself (with a value of the wrong
type): a name PyTorch's parser refuses as a keyword is dropped. Each entry is a list of overloads, each
a list of [name, kind], kind "p" (positional or keyword) or "k" (keyword only); positional-
only parameters are left out.
"""

import ast
import inspect
import json
import os
import re
import torch
import torch.nn.functional as F

C = os.path.join(os.path.dirname(torch.__file__), "_C")


def stub_defs(path, cls=None):
    tree = ast.parse(open(path).read())
    body = tree.body
    if cls is not None:
        body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
    defs = {}
    for n in body:
        if isinstance(n, ast.FunctionDef):
            a = n.args
            pos = [x.arg for x in a.args if x.arg != "self"]
            ov = [[x, "p"] for x in pos if not x.startswith("__")]
            ov += [[x.arg, "k"] for x in a.kwonlyargs]
            defs.setdefault(n.name, []).append(ov)
    return defs


def split_params(text):
    depth, cur, parts = 0, "", []
    for ch in text:
        if ch in "([{":
            depth += 1
        if ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out, kind = [], "p"
    for p in (s.strip() for s in parts):
        if not p:
            continue
        if p.startswith("*"):
            kind = "k"
            continue
        name = p.split("=")[0].split(":")[0].split()[-1]  # "bool pivot=True" -> pivot
        if name.isidentifier():
            out.append([name, kind])
    return out


def balanced(text):
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        if ch in ")]}":
            if depth == 0:
                return text[:i]
            depth -= 1
    return None


def doc_overloads(obj, name):
    sigs = []
    for line in (inspect.getdoc(obj) or "").splitlines():
        m = re.match(
            r"^\s*(?:\.\. function:: |\.\. method:: )?(?:torch\.|Tensor\.|linalg\.)?"
            + re.escape(name)
            + r"\((.*)$",
            line,
        )
        inner = balanced(m.group(1)) if m else None
        if inner is not None:
            sigs.append(split_params(inner))
    return sigs


def py_overloads(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    out = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY) or p.name == "self":
            continue
        out.append([p.name, "k" if p.kind == p.KEYWORD_ONLY else "p"])
    return [out]


PROBE = torch.ones(2)


def refused(fn, name):
    """True when PyTorch's argument parser does not take `name` as a keyword of fn."""
    try:
        fn(**{name: object()})
    except Exception as e:
        msg = str(e)
        if f"unexpected keyword argument '{name}'" in msg or "takes no keyword arguments" in msg:
            return True
        if "expected one of" in msg:
            listed = msg.split("expected one of", 1)[1]
            return re.search(r"[\w\]\)] " + re.escape(name) + r"\b", listed) is None
    return False


def verified(fn, sigs):
    return [[[n, k] for n, k in ov if not refused(fn, n)] for ov in sigs]


def record(namespace, stubs, bound=None):
    table = {}
    for name in dir(namespace):
        if name.startswith("_"):
            continue
        obj = getattr(namespace, name, None)
        if obj is None or inspect.isclass(obj) or inspect.ismodule(obj) or not callable(obj):
            continue
        if inspect.isfunction(obj) or inspect.ismethod(obj):
            sigs = py_overloads(obj)
        else:
            sigs = next((s[name] for s in stubs if name in s), None) or doc_overloads(obj, name)
            fn = getattr(bound, name, None) if bound is not None else obj
            if fn is not None:
                sigs = verified(fn, sigs)
        if sigs:
            table[name] = sigs
    return table


functions = stub_defs(os.path.join(C, "_VariableFunctions.pyi"))
methods = stub_defs(os.path.join(C, "__init__.pyi"), "TensorBase")
nn = stub_defs(os.path.join(C, "_nn.pyi"))
out = {
    "torch": record(torch, [functions]),
    "Tensor": record(torch.Tensor, [methods], bound=PROBE),
    "torch.nn.functional": record(F, [nn, functions]),
    "torch.linalg": record(torch.linalg, []),
}
print(json.dumps(out, indent=0, sort_keys=True))
