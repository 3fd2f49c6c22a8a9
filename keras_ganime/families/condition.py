"""Conditional generation, written once for the families that offer it (`model.condition`).

G is given a learned embedding of each attribute's label joined to its latent (as StyleGAN2-ADA
joins one to z); D adds to its logit the projection term of Miyato and Koyama (2018), the inner
product of an embedding of each label with D's penultimate features. The fakes' labels are rows
of the data's label table drawn at random, so that every combination comes as often as the data
has it and no impossible one is asked for more often; drawn from the engine's generator, they
resume and split over replicas as every other draw.

A conditional family's sampling network takes one array, the latents with the labels' indices
appended on the last axis (`pack`), so that the grids, the evaluations and `generate` hand it
latents as they always did; its export takes (z, labels) apart.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from keras_ganime.families.base import Tensor
from keras_ganime.settings import ConfigError, ModelConfig

LABELS = "labels"  # the reals' labels: the engine gathers them with the real batch
FAKE_LABELS = "fake_labels"  # the fakes', drawn by `Condition.draw`


class Condition:
    """A run's conditioned attributes: their vocabularies, and the data's label table once the
    engine gives it (none when a run is only sampled: then each value is drawn alike)."""

    def __init__(self, model: ModelConfig) -> None:
        self.vocabulary = model.vocabulary()
        if not self.vocabulary:
            raise ConfigError("model.condition_values is empty: a conditional run's networks "
                              "need its data's values, which python -m keras_ganime.train "
                              "fills in", "model.condition_values")
        self.names = tuple(self.vocabulary)
        self.sizes = tuple(len(v) for v in self.vocabulary.values())
        self.table: np.ndarray | None = None  # (N, attributes) int32, the data's rows

    def __len__(self) -> int:
        return len(self.names)

    def draw(self, rng: Any, n: int) -> Tensor:
        """Labels for n fakes, (n, attributes) int32."""
        if self.table is not None:
            rows = rng.uniform([n], 0, len(self.table), dtype="int32")
            return ops.take(ops.convert_to_tensor(self.table), rows, axis=0)
        return ops.stack([rng.uniform([n], 0, size, dtype="int32") for size in self.sizes],
                         axis=1)

    def input(self) -> keras.KerasTensor:
        return keras.Input((len(self),), dtype="int32", name="labels")

    def embed(self, labels: keras.KerasTensor, dim: int, prefix: str,
              initializer: Any = "uniform") -> list[keras.KerasTensor]:
        """Each attribute's label as a learned vector of `dim` values."""
        return [layers.Embedding(size, dim, embeddings_initializer=initializer,
                                 name=f"{prefix}_{name}")(labels[:, j])
                for j, (name, size) in enumerate(zip(self.names, self.sizes))]

    def projection(self, features: keras.KerasTensor, labels: keras.KerasTensor
                   ) -> keras.KerasTensor:
        """The projection term, (batch, 1): sum over attributes of <embed(label), features>.
        Its embeddings start at zero: D starts as the unconditional one and learns the term."""
        dim = features.shape[-1]
        terms = [ops.sum(e * features, axis=-1, keepdims=True)
                 for e in self.embed(labels, dim, "projection", "zeros")]
        return terms[0] if len(terms) == 1 else layers.Add(dtype="float32")(terms)

    def pack(self, z: Tensor, labels: Tensor) -> Tensor:
        """The sampling network's one input: z with the labels appended on its last axis."""
        shape = (*ops.shape(z)[:-1], len(self))
        return ops.concatenate([z, ops.reshape(ops.cast(labels, z.dtype), shape)], axis=-1)

    def by_rows(self, packed: Tensor, latent_dim: int, columns: int) -> Tensor:
        """The first `columns` packed latents again for each value of the first attribute, one
        row each (the other labels as drawn): a training grid that shows the condition at work."""
        first = np.array(packed[:columns])
        rows = [first.copy() for _ in range(self.sizes[0])]
        for value, row in enumerate(rows):
            row[..., latent_dim] = value
        return ops.convert_to_tensor(np.concatenate(rows))

    def sampler(self, generator: keras.Model, latent_dim: int) -> keras.Model:
        """`generator` (z, labels) -> images as a network of packed latents."""
        shape = generator.inputs[0].shape[1:]
        packed = keras.Input((*shape[:-1], latent_dim + len(self)), name="z")
        z = packed[..., :latent_dim]
        labels = ops.cast(ops.round(ops.reshape(packed[..., latent_dim:], (-1, len(self)))),
                          "int32")
        return keras.Model(packed, generator([z, labels]), name="conditional_sampler")

