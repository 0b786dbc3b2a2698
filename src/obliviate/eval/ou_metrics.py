"""open-unlearning's arithmetic for the few TOFU formulas where it departs from metrics.md
(``eval.protocol=open-unlearning``, see obliviate.protocol).

Each function states its formula; obliviate.eval.metrics holds the exact ones. The departures:
a 1e-10 in three denominators (truth ratio, its closer-to-1 aggregate, the normalised
probability) and extraction strength's value when no answer suffix is predicted.
"""

from __future__ import annotations

import numpy as np
import torch

EPS = 1e-10


def truth_ratio(avg_loss_true: np.ndarray, avg_loss_false: np.ndarray) -> np.ndarray:
    """R = exp(-mean_j loss_false[:, j]) / (exp(-loss_true) + 1e-10), per item: (N,), (N, K)."""
    p_true = np.exp(-np.asarray(avg_loss_true, dtype=np.float64))  # (N,)
    p_false = np.exp(-np.asarray(avg_loss_false, dtype=np.float64).mean(axis=1))  # (N,)
    return p_false / (p_true + EPS)


def truth_ratio_closer_to_1(r: np.ndarray) -> float:
    """mean(min(R, 1 / (R + 1e-10)))."""
    r = np.asarray(r, dtype=np.float64)
    return float(np.mean(np.minimum(r, 1.0 / (r + EPS))))


def normalised_probability(avg_loss_true: np.ndarray, avg_loss_false: np.ndarray) -> np.ndarray:
    """P_true / (P_true + sum_j P_false_j + 1e-10) with P = exp(-avg_loss): (N,), (N, K)."""
    p_true = np.exp(-np.asarray(avg_loss_true, dtype=np.float64))  # (N,)
    p_false = np.exp(-np.asarray(avg_loss_false, dtype=np.float64)).sum(axis=1)  # (N,)
    return p_true / (p_true + p_false + EPS)


def extraction_strength(pred_ids: torch.Tensor, label_ids: torch.Tensor) -> float:
    """1 - k/N for the first k in 0..N-1 with pred[k:] == label[k:]; when there is none the
    search stops at k = N-1, so a mispredicted last token scores 1/N (metrics.md: 0). N = 0
    scores 0 (metrics.md: null)."""
    n = len(label_ids)
    if n == 0:
        return 0.0
    wrong = torch.nonzero(torch.as_tensor(pred_ids) != torch.as_tensor(label_ids)).flatten()
    k = 0 if wrong.numel() == 0 else min(int(wrong[-1]) + 1, n - 1)
    return 1.0 - k / n
