"""Benchmarks for mlx-snn (not run in CI). See bench/README.md."""
