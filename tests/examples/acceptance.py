"""Runs real PyTorch programs, unchanged, through `gradjit torch` (not part of pytest: CI has
no network and no mirrors). `python -m tests.examples.acceptance [--only NAME ...]
[--tutorials DIR] [--timeout S]`.

The programs come from the mirrors in /work/.mirror (git directories: pytorch/examples,
karpathy/micrograd, karpathy/minGPT; $GRADJIT_MIRRORS overrides) and, with --tutorials, from
a checkout of pytorch/tutorials. Each is copied to a scratch directory as it is in the
repository; only arguments, data the script reads and, for the libraries, a small driver
of ours (calling the tests of micrograd, a few minGPT training steps) are added. Missing
torchvision is stood in for by tests/examples/shims (a synthetic MNIST). Prints one line
per program: ran / failed, the seconds, and the last line of a failure; with --torch PYTHON
(an interpreter with PyTorch) each program also runs on real PyTorch, and the line adds its
time and the largest relative difference of the program's final numbers (Program.result).
docs/compat.md holds the last results."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.examples import acceptance_programs as programs

ROOT = Path(__file__).resolve().parents[2]
MIRRORS = Path(os.environ.get("GRADJIT_MIRRORS", "/work/.mirror"))


def _git_show(repo: Path, path: str) -> bytes | None:
    git = [d for d in repo.glob("*") if (d / "HEAD").exists()] or [repo]
    out = subprocess.run(["git", "--git-dir", str(git[0]), "show", f"HEAD:{path}"],
                         capture_output=True)
    return out.stdout if out.returncode == 0 else None


def _materialise(program, scratch: Path, tutorials: Path | None) -> str | None:
    """Copies the program's files into scratch; the reason it cannot, or None."""
    for path in program.files:
        if program.source == "tutorials":
            if tutorials is None or not (tutorials / path).exists():
                return "needs --tutorials (a pytorch/tutorials checkout)"
            data = (tutorials / path).read_bytes()
        else:
            repo = MIRRORS / program.source
            if not repo.exists():
                return f"no mirror {repo}"
            data = _git_show(repo, path)
            if data is None:
                return f"{path} is not in the mirror"
        target = scratch / program.strip(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for name, text in program.extra_files.items():
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_text(text)
    return None


def numbers(program, stdout: str) -> list[float]:
    """The floats in the last match of the program's result pattern."""
    found = re.findall(program.result, stdout) if program.result else []
    text = found[-1] if found else ""
    return [float(x) for x in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", text)]


def max_rel_diff(ours: list[float], theirs: list[float]) -> float | None:
    """max |ours - theirs| over max |theirs| (values near 0 do not blow it up)."""
    if not ours or len(ours) != len(theirs):
        return None
    scale = max(max(abs(b) for b in theirs), 1e-12)
    return max(abs(a - b) for a, b in zip(ours, theirs)) / scale


def run(program, tutorials: Path | None, timeout: float,
        python: str | None = None) -> tuple[str, float, str, str]:
    """Runs program through `gradjit torch` (python None) or on real PyTorch (python, an
    interpreter with torch installed): status, seconds, a note, the whole stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        reason = _materialise(program, scratch, tutorials)
        if reason is not None:
            return "skipped", 0.0, reason, ""
        env = dict(os.environ)
        paths = [str(ROOT / p) for p in program.pythonpath]
        if python is None:
            paths.insert(0, str(ROOT))
        env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
        env.update(program.env)
        cmd = ([python, *program.command] if python is not None else
               [sys.executable, "-m", "gradjit", "torch", *program.command])
        start = time.perf_counter()
        try:
            out = subprocess.run(cmd, cwd=scratch / program.cwd, env=env, capture_output=True,
                                 text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.perf_counter() - start, f"over {timeout:.0f} s", ""
        seconds = time.perf_counter() - start
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
            return "failed", seconds, last, out.stdout
        if program.expect and program.expect not in out.stdout:
            return "failed", seconds, f"output lacks {program.expect!r}", out.stdout
        return "ran", seconds, (out.stdout.strip().splitlines() or [""])[-1][:100], out.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="program names (prefixes)")
    parser.add_argument("--tutorials", type=Path, help="a pytorch/tutorials checkout")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--torch", metavar="PYTHON", help="also run on this PyTorch interpreter")
    args = parser.parse_args(argv)
    chosen = [p for p in programs.PROGRAMS
              if not args.only or any(p.name.startswith(o) for o in args.only)]
    failures = 0
    for program in chosen:
        status, seconds, note, stdout = run(program, args.tutorials, args.timeout)
        failures += status in ("failed", "timeout")
        line = f"{program.name:34s} {status:8s} {seconds:7.1f} s"
        if args.torch:
            t_status, t_seconds, t_note, t_stdout = run(program, args.tutorials, args.timeout,
                                                        args.torch)
            ours, theirs = numbers(program, stdout), numbers(program, t_stdout)
            diff = max_rel_diff(ours, theirs)
            line += (f" | torch {t_status} {t_seconds:6.1f} s | ours {ours[:4]} torch "
                     f"{theirs[:4]} rel diff {'-' if diff is None else f'{diff:.2e}'}")
        print(f"{line}  {note}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
