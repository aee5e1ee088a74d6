"""Performance benchmarks (not tests): python -m benchmarks.throughput [overrides]."""
