"""Cumulative primitives (cumsum, cumprod, cumlogsumexp, cummax, cummin): shape rules,
NumPy references, derivative and batching rules, registered by the tables of ir/ and
lowered natively by codegen/cumulative.py (one sequential loop along the axis per row)."""
