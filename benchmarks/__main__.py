"""python -m benchmarks [--quick] [--only NAME ...] [--json out.json] [--threads N]
                        [--load N] [--procs N] [--cpu-report] [--pool-table]

Prints, per workload, the median time of each system (interleaved rounds), the ratio of
gradjit to each, peak memory, and cold compile times (trace + compile + first run).
--load, --procs, --cpu-report and --pool-table: see benchmarks/load.py.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "GRADJIT_NUM_THREADS")


def configure_threads(n: int):
    """Gives every library n threads. Must run before NumPy, JAX or PyTorch is imported: the
    BLAS and XLA read their settings when they load."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()


def build(gj, quick: bool):
    from benchmarks import imperative_steps, model_steps, workloads
    sizes = [10**6] if quick else [10**6, 10**7]
    made = [workloads.chain(gj, n) for n in sizes]
    made.append(workloads.mlp(gj))
    made.append(workloads.tiny(gj))
    for name in ("gmm", "lstm", "imperative"):
        maker = getattr(workloads, name, None)
        if maker is not None:
            made.extend(maker(gj, quick) if name == "gmm" else [maker(gj)])
    made.extend(imperative_steps.build(gj, quick))
    made.extend(model_steps.build(gj, quick))
    return made


def run_workload(w, quick: bool) -> dict:
    from benchmarks import harness
    errors = harness.check_agreement(w)
    batch = {s.name: harness.calls_per_round(s.run) for s in w.systems}
    timed = []
    for s in w.systems:
        n = batch[s.name]
        timed.append(harness.System(s.name, (lambda run=s.run, n=n: [run() for _ in range(n)]),
                                    s.to_numpy))
    med = harness.interleaved_medians(timed, rounds=5 if quick else 15,
                                      min_seconds=0.5 if quick else 2.0)
    med = {name: t / batch[name] for name, t in med.items()}
    row = {"workload": w.name, "description": w.description, "median_seconds": med,
           "max_rel_error": errors, "extra": w.extra,
           "peak_bytes": {s.name: harness.peak_memory(s.run) for s in w.systems},
           "cold_seconds": {s.name: s.cold() for s in w.systems if s.cold is not None}}
    return row


def print_row(row: dict):
    from benchmarks.harness import fmt_time
    med = row["median_seconds"]
    gjt = med.get("gradjit")
    print(f"\n== {row['workload']}: {row['description']}")
    for name, t in med.items():
        ratio = f"gradjit/{name} = {gjt / t:5.2f}x" if gjt and name != "gradjit" else ""
        mem = row["peak_bytes"].get(name, 0) / 2**20
        print(f"  {name:10s} {fmt_time(t):>10s}   peak {mem:8.1f} MiB   {ratio}")
    if "ideal_seconds" in row["extra"] and gjt:
        ideal = row["extra"]["ideal_seconds"]
        print(f"  ideal (bytes / streaming bandwidth) {fmt_time(ideal)}; gradjit/ideal = "
              f"{gjt / ideal:.2f}x")
    if "flops" in row["extra"]:
        for name, t in med.items():
            print(f"  {name:10s} {row['extra']['flops'] / t / 1e9:7.1f} GFLOP/s")
    for name, t in row["cold_seconds"].items():
        print(f"  cold {name:8s} {fmt_time(t)}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--only", nargs="*", help="workload name prefixes to run")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per library (gradjit, its BLAS, NumPy, JAX, PyTorch); "
                             "default 1, as issue 6's targets are measured; 0: each "
                             "library's own default")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="run N busy-loop processes for the duration")
    parser.add_argument("--procs", type=int, default=1, metavar="N",
                        help="run N copies of this benchmark at once, each reporting")
    parser.add_argument("--cpu-report", action="store_true",
                        help="print the CPU, the ISA LLVM targets, the BLAS and its threads")
    parser.add_argument("--pool-table", action="store_true",
                        help="issue 13's table: the MLP alone, two at once, every core busy")
    args = parser.parse_args(argv)
    from benchmarks import load
    if args.procs > 1:
        rest = load.strip_option(load.strip_option(sys.argv[1:] if argv is None else argv,
                                                   "--procs"), "--load")
        with load.busy_loops(args.load):
            for k, out in enumerate(load.run_copies(rest, args.procs)):
                print(f"---- copy {k + 1} of {args.procs} ----\n{out}", end="")
        return
    with load.busy_loops(args.load):
        _run(args)


def _run(args):
    from benchmarks import load
    if args.threads > 0:
        configure_threads(args.threads)
    if args.cpu_report or args.pool_table:
        for line in load.cpu_report():
            print(line)
        if args.pool_table:
            for line in load.pool_table(1.0 if args.quick else 3.0):
                print(line)
        return
    import gradjit as gj
    from benchmarks import workloads
    if workloads.torch is not None and args.threads > 0:
        workloads.torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; {args.threads} thread(s) each; systems: gradjit"
          + (", jax " + workloads.jax.__version__ if workloads.jax else "")
          + (", torch " + workloads.torch.__version__ if workloads.torch else "")
          + (f"; {args.load} busy loop(s) alongside" if args.load else ""))
    for line in load.cpu_report():
        print(line)
    rows = []
    for w in build(gj, args.quick):
        if args.only and not any(w.name.startswith(p) for p in args.only):
            continue
        row = run_workload(w, args.quick)
        print_row(row)
        rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)


if __name__ == "__main__":
    main()
