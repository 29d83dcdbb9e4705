"""Along-axis primitives: the cumulative ones (cumsum, cumprod, cumlogsumexp, cummax,
cummin) and sort. Shape rules, NumPy references, derivative and batching rules, registered
by the tables of ir/; lowered natively by codegen/cumulative.py (one sequential loop along
the axis per row) and codegen/sorting.py (a merge sort per row)."""
