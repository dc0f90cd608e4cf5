"""perfmon: see and fix the performance of PyTorch models on GPU nodes."""
