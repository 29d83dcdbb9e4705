"""python -m benchmarks.profile_overhead: what gj.profile() costs per call.

Times the same compiled call plain, under `gj.profile(kernels=False)` (wall clock around
each program) and under `gj.profile()` (instrumented kernels), interleaved, medians; prints
the ratios. Workloads: the tiny 0-d call (pure overhead), chain 1e6 (one fused loop nest)
and the MLP 784-256-10 value_and_grad (BLAS-bound).
"""
from __future__ import annotations

import argparse


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args(argv)
    import gradjit as gj
    from benchmarks import harness, workloads
    cases = [workloads.tiny(gj), workloads.chain(gj, 10**6), workloads.mlp(gj)]
    print(f"{'workload':<16} {'plain':>10} {'program timer':>14} {'kernel timer':>13} "
          f"{'ratio':>7} {'ratio':>7}")
    for w in cases:
        run = next(s.run for s in w.systems if s.name == "gradjit")
        run()
        n = harness.calls_per_round(run)

        def batch(run=run, n=n):
            for _ in range(n):
                run()

        sessions = {"plain": None, "program": gj.profile(kernels=False), "kernel": gj.profile()}
        systems = []
        for name, session in sessions.items():
            if session is None:
                systems.append(harness.System(name, batch, None))
                continue

            def timed(session=session):
                with session:
                    batch()
            timed()                                     # compiles the instrumented copy
            systems.append(harness.System(name, timed, None))
        med = harness.interleaved_medians(systems, rounds=args.rounds, min_seconds=1.0)
        t = {k: v / n for k, v in med.items()}
        print(f"{w.name:<16} {harness.fmt_time(t['plain']):>10} "
              f"{harness.fmt_time(t['program']):>14} {harness.fmt_time(t['kernel']):>13} "
              f"{t['program'] / t['plain']:>6.2f}x {t['kernel'] / t['plain']:>6.2f}x")
    print("(ratios: profiled / plain time per call; medians of interleaved rounds)")


if __name__ == "__main__":
    main()
