"""The linear-algebra primitives (cholesky, triangular_solve, lu, qr, eigh, svd): their shape
rules (shapes.py), NumPy reference (impl.py), derivative rules (vjp.py, jvp.py) and batching
rules (batching.py). Each rule table of the layers merges the table of this package.

Every one takes leading batch axes: an operand [..., m, n] is a stack of matrices.
"""
