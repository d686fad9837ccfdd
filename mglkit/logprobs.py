"""The summed log-probability of completions: one function for training (the DPO loss) and for
evaluation (the scorer's log-likelihoods)."""

from __future__ import annotations


def completion_logps(model, input_ids, attention_mask, completion_mask):
    """Per row: the summed log-probability of the tokens where ``completion_mask`` is 1 (each token
    predicted from the ones before it), and how many such tokens there are."""
    import torch

    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    labels = input_ids[:, 1:]
    mask = completion_mask[:, 1:]
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_logps = torch.gather(logps, 2, labels.unsqueeze(-1)).squeeze(-1)
    return (token_logps * mask).sum(dim=1), mask.sum(dim=1)
