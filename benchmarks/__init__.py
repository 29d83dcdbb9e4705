"""Benchmarks of gradjit against NumPy, JAX and PyTorch: python -m benchmarks."""
