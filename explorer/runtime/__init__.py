"""Torch: modules made from a NetSpec, loaded models and predictions, the fast copy, Grad-CAM,
timings, the memory guard, the heavy-work queue and its workers (local processes, or Ray
tasks: workers.py, tasks.py)."""
