"""Torch: modules made from a NetSpec, loaded models and predictions, the fast copy, Grad-CAM,
timings, the memory guard and the heavy-work queue."""
