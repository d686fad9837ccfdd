"""Which pairs each process trains on at each step, and the metrics window between log lines."""

from __future__ import annotations

import torch


class Batches:
    """Which pairs each micro-batch holds: a seeded order per epoch, this process's share of it."""

    def __init__(self, pairs, batch_size: int, world: int, rank: int, seed: int, group_by_length: bool):
        self.pairs, self.batch_size, self.world, self.rank = pairs, batch_size, world, rank
        self.seed, self.group_by_length = seed, group_by_length

    def order(self, epoch: int) -> list[int]:
        order = torch.randperm(len(self.pairs), generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
        if self.group_by_length:  # sorted within windows of 50 batches: less padding, still shuffled
            window = 50 * self.batch_size * self.world
            order = [
                i
                for w in range(0, len(order), window)
                for i in sorted(order[w : w + window], key=lambda i: -self.pairs[i].length)
            ]
        return order

    def for_step(self, epoch: int, micro: int, grad_accum: int, per_epoch: int):
        """This process's micro-batches for the next optimizer step, and the position after it."""
        order, size = self.order(epoch), self.batch_size * self.world
        count = min(grad_accum, per_epoch - micro)
        batches = [order[m * size : (m + 1) * size][self.rank :: self.world] for m in range(micro, micro + count)]
        after = (epoch + 1, 0) if micro + count == per_epoch else (epoch, micro + count)
        return batches, after


class MetricsWindow:
    """Metrics of the steps since the last log line, averaged when logged."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, metrics: dict) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def mean(self) -> dict:
        mean = {k: v / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return mean
