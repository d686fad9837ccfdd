"""DPO losses, as TRL defines them, from policy and reference log-probabilities."""

LOSSES = ("sigmoid", "ipo", "hinge", "robust")


def dpo_loss(kind: str, beta: float, label_smoothing: float, chosen, rejected, ref_chosen, ref_rejected,
             chosen_tokens, rejected_tokens):  # fmt: skip
    """Per-pair loss and the implicit rewards beta * (log pi - log pi_ref)."""
    import torch
    import torch.nn.functional as F

    chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
    delta = chosen_ratio - rejected_ratio
    if kind == "sigmoid":
        loss = -F.logsigmoid(beta * delta)
    elif kind == "hinge":
        loss = torch.relu(1 - beta * delta)
    elif kind == "ipo":  # length-normalised, as TRL (agreed with the IPO authors)
        ipo_delta = chosen_ratio / chosen_tokens.clamp(min=1) - rejected_ratio / rejected_tokens.clamp(min=1)
        loss = (ipo_delta - 1 / (2 * beta)) ** 2
    elif kind == "robust":
        eps = label_smoothing
        loss = (-(1 - eps) * F.logsigmoid(beta * delta) + eps * F.logsigmoid(-beta * delta)) / (1 - 2 * eps)
    else:
        raise ValueError(f"unknown loss {kind!r}; choose from {', '.join(LOSSES)}")
    return loss, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()
