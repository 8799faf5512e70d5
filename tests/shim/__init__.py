"""Test-only executors of the kernel bodies in metal/: the CPU shim and the nvcc build."""
