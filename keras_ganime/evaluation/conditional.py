"""How well a conditional generator gives what is asked of it: `cond_acc_<attribute>`, the share
of faces asked for a value that the shipped anime encoder's colour head reads as that value,
over equal numbers per value, with the confusion matrix behind it. The encoder's own accuracy
on held-out real faces (its card, `encoder.FACTS`) is the ceiling a generator is read against.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_ganime.evaluation import encoder, features

if TYPE_CHECKING:
    from keras_ganime.families.base import Family


def ceiling() -> dict[str, float]:
    """The encoder's accuracy per colour head on held-out real faces."""
    held_out = json.loads(encoder.FACTS.read_text())["held_out"]
    return {name: held_out[name] for name in ("hair", "eyes")}


def accuracy(family: Family, seed: int, samples: int,
             heads: tuple[Any, dict[str, tuple[str, ...]]] | None = None
             ) -> dict[str, dict[str, Any]]:
    """For each conditioned attribute the encoder has a head for: `samples` faces shared
    equally by the values it knows (the other attributes as the family draws them), read by the
    head. Returns {attribute: {"cond_acc": the share read as asked, "colours": the head's
    colours, "asked_by_read": the confusion matrix, rows asked, columns read}}. A value the head
    does not know is left out, and an attribute with none it knows.
    """
    from keras_ganime.engines import latents
    from keras_ganime.images.convert import render

    extract, colours = heads or features.anime_colours()
    vocabulary = family.cfg.model.vocabulary()
    column = {name: family.cfg.model.latent_dim + j for j, name in enumerate(vocabulary)}
    sampler = family.sampler()
    out: dict[str, dict[str, Any]] = {}
    offset = 0
    for head, known in colours.items():
        if head in vocabulary:
            asked = [(v, known.index(name)) for v, name in enumerate(vocabulary[head])
                     if name in known]
            if not asked:
                offset += len(known)
                continue
            per_value = max(1, samples // len(asked))
            n = per_value * len(asked)
            z = np.array(latents(family, seed, n)).reshape(n, -1)
            z[:, column[head]] = np.repeat([v for v, _ in asked], per_value)
            images = render(sampler, z.reshape(n, *sampler.input_shape[1:]))
            read = extract(images)[:, offset:offset + len(known)].argmax(axis=1)
            wanted = np.repeat([k for _, k in asked], per_value)
            confusion = np.zeros((len(known), len(known)), np.int64)
            np.add.at(confusion, (wanted, read), 1)
            out[head] = {"cond_acc": round(float(np.mean(read == wanted)), 4),
                         "colours": list(known), "asked_by_read": confusion.tolist()}
        offset += len(known)
    return out
