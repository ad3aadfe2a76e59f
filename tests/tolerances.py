"""Numeric tolerances, set from what float32 can promise (one place, one explanation).

Float32 results differ in their last bits between CPUs (vector widths, fused multiply-adds),
batch sizes, thread splits and the order of operations -- torchvision applies
``transform_input`` inside its model, we fold it into the normalisation. Through ~100 layers
those last bits grow, so the contract for the same weights on the same input is:

- LOGIT_ATOL: logits within 1e-4 (max absolute difference) of the reference model's.
- PROB_ATOL: a logit perturbation d moves softmax's p_i by p_i (d_i - sum_j p_j d_j), at most
  2 p_i (1 - p_i) max|d| <= max|d| / 2; so probabilities agree within LOGIT_ATOL / 2, plus a
  few units in the last place (ulps) for the softmax's own rounding. (Issue 10: 0.6276880 vs
  0.6276738 on another CPU, 1.4e-5 apart, was failing a 1e-5 check; it is within 5e-5.)
- ulps(scale, n): n ulps at the magnitude ``scale``, for results of the same few float32
  operations on the same inputs (preprocessing, normalising a map), where only rounding differs.

Exact checks stay exact: keys, shapes, counts, class indices and top-k order.
"""

import torch

EPS32 = torch.finfo(torch.float32).eps  # 1 ulp at 1.0: 2**-23
LOGIT_ATOL = 1e-4


def ulps(scale: float = 1.0, n: int = 4) -> float:
    return n * EPS32 * max(1.0, float(scale))


PROB_ATOL = LOGIT_ATOL / 2 + ulps(1.0, 8)

# Feature maps and Grad-CAMs are normalised to [0, 1] (divided by their range or maximum); the
# tests recompute them through the same kernels with their own hooks and autograd calls, so only
# accumulation order and the normalising division round differently: tens of ulps at 1.0.
NORMALISED_ATOL = ulps(1.0, 80)  # ~1e-5
