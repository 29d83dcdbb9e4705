"""Records mpmath values of the special functions into tests/codegen/special_reference.py.

Run from the repository root: `python tests/codegen/record_special_reference.py` (needs
mpmath, which the tests themselves do not). 40 digits, printed as the nearest f64.
"""
import mpmath
import numpy as np

mpmath.mp.dps = 40
rng = np.random.default_rng(20261206)


def pts(*arrays):
    return [float(v) for a in arrays for v in np.asarray(a, np.float64)]


def log_abs_gamma(x):
    return mpmath.loggamma(x).real if x > 0 else mpmath.log(abs(mpmath.gamma(x)))


SETS = {
    "erfc": (mpmath.erfc, pts(rng.uniform(-6, 27, 60), rng.uniform(-1, 1.5, 30),
                              [0.84375, 1.25, 6.0, 26.5, 27.2, -0.1, 1e-300])),
    "erfinv": (mpmath.erfinv, pts(rng.uniform(-1, 1, 60), 1 - np.logspace(-16, -1, 25),
                                  -np.logspace(-300, -1, 15))),
    "lgamma": (log_abs_gamma, pts(rng.uniform(-20, 30, 60), np.logspace(-300, 300, 20),
                                  [0.5, 1.5, 2.5, 3.0, 1.0 + 1e-8, 2.0 - 1e-8])),
    "digamma": (mpmath.digamma, pts(rng.uniform(-20, 30, 60), np.logspace(-300, 300, 20),
                                    [1.0, 2.0, 0.5, -0.5, -1.5])),
    "polygamma1": (lambda x: mpmath.polygamma(1, x),
                   pts(rng.uniform(-20, 30, 50), [1.0, 0.5, -0.5, 1e-5])),
    "polygamma2": (lambda x: mpmath.polygamma(2, x),
                   pts(rng.uniform(-20, 30, 50), [1.0, 0.5, -0.5, 1e-5])),
    "polygamma3": (lambda x: mpmath.polygamma(3, x), pts(rng.uniform(0.01, 30, 50), [1.0, 0.5])),
}


def main():
    out = ['"""mpmath 1.3 values (40 digits, printed as the nearest f64) of the special',
           'functions, (x, f(x)) pairs: the references of tests/codegen/test_vmath_gamma.py and',
           'tests/ir/test_special_impl.py.',
           'Written by tests/codegen/record_special_reference.py."""',
           '', 'REFERENCE = {']
    for name, (f, xs) in SETS.items():
        out.append(f'    "{name}": [')
        line = "       "
        for x in xs:
            pair = f" ({x!r}, {float(f(mpmath.mpf(x)))!r}),"
            if len(line) + len(pair) > 100:
                out.append(line)
                line = "       "
            line += pair
        out += [line, "    ],"]
    out.append("}")
    with open("tests/codegen/special_reference.py", "w") as fh:
        fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
