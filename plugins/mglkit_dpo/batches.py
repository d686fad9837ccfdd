"""Which pairs each process trains on at each step, the tensors of a forward, and the metrics window
between log lines."""

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


def model_batch(model, pairs, pad: int, padding_free: bool, device) -> dict:
    """One forward's inputs: the chosen sequences, then the rejected ones. Padded (``collate``), or with
    ``padding_free`` in whichever layout suits the model's attention with the fewest positions
    (``pack_for``: rows of packed sequences, or the padded batch where packing saves nothing)."""
    from mglkit.packing import pack_for
    from mglkit.preference import collate

    batch = collate(pairs, pad)
    if padding_free:
        batch = pack_for(model, batch)
    return {k: v.to(device) for k, v in batch.items()}


def shares(n: int, size: int, rank: int, world: int) -> list[tuple[int, bool]]:
    """This process's batches of ``size`` of ``n`` items, as (first item, real): every world-th batch
    of the ones a single process would make, so results do not depend on the number of processes.
    Each process gets as many forwards (a sharded model, FSDP or ZeRO-3, needs every process in each);
    one left without a batch repeats the first and drops its result (real False)."""
    starts = list(range(0, n, size))
    rounds = -(-len(starts) // world)
    return [(starts[k], True) if k < len(starts) else (0, False) for k in range(rank, rounds * world, world)]


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
