"""Train the anime-face encoder whose pooled features feed fid_anime, kid_anime and dup_anime;
`python -m keras_ganime.evaluation.encoder [--data FOLDER] [--epochs E]` (or `make encoder`).

Inception features see ImageNet objects; an encoder trained on the anime faces themselves sees
what varies between them. Three heads share one small convolutional trunk:
    hair   the 12 hair-colour tags of tags.csv
    eyes   the 10 eye-colour tags
    kind   real, or which disturbance (degrade.ENCODER_DISTURBANCES: blur, noise, shuffled
           patches, checkerboard) at a random strength in [0.15, 1]; without this head the
           features would see colour only, and miss the structure a GAN gets wrong
    strength  that strength (0 for real faces), regressed: with `kind` alone, the features of
           heavily damaged faces were measured closer to the real ones (a lower FID) than those
           of half-damaged faces, since telling the kinds apart needs no sense of degree
Each batch is half real faces (randomly flipped) and half degraded copies of other faces, drawn
afresh every step. A fixed-seed tenth of the faces is held out; the accuracies on it are written
with the weights into keras_ganime/evaluation/weights/ (anime_encoder.weights.h5 and
anime_encoder.json), which ship inside the package, so the metrics never download anything.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from keras_ganime.data.tagged import (
    SPLIT_SEED,
    TAGGED_SIZE,
    TaggedFaces,
    load_tagged_faces,
    split,
)
from keras_ganime.evaluation import degrade

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS = WEIGHTS_DIR / "anime_encoder.weights.h5"
FACTS = WEIGHTS_DIR / "anime_encoder.json"
SIZE = TAGGED_SIZE  # the encoder sees the tagged faces at their size
FEATURE_DIM = 256
KINDS = ("real", *degrade.ENCODER_DISTURBANCES)
MIN_STRENGTH = 0.15  # weaker than this is hard to see even for a person at 64 px


def build_model(n_hair: int = 12, n_eyes: int = 10) -> Any:
    """uint8-valued (N, 64, 64, 3) images -> {"features", "hair", "eyes", "kind", "strength"}.

    Four stride-2 3x3 convolutions (32, 64, 128, 256 channels, batch norm, ReLU) and global
    average pooling: 15 M multiply-adds per image, so that embedding is cheap next to training.
    Features are the pooled 256 ReLU outputs, like Inception's pool3 for FID.
    """
    import keras
    from keras import layers

    images = keras.Input((SIZE, SIZE, 3), name="images")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(images)
    for filters in (32, 64, 128, FEATURE_DIM):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    outputs = {
        "features": features,
        "hair": layers.Dense(n_hair, name="hair")(features),
        "eyes": layers.Dense(n_eyes, name="eyes")(features),
        "kind": layers.Dense(len(KINDS), name="kind")(features),
        "strength": layers.Dense(1, name="strength")(features),
    }
    return keras.Model(images, outputs, name="anime_encoder")


def degraded_batch(images: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                         np.ndarray, np.ndarray]:
    """Each image disturbed by a random kind at a random strength; returns (images, kind index
    into KINDS, strength)."""
    kinds = rng.integers(1, len(KINDS), len(images))
    strengths = rng.uniform(MIN_STRENGTH, 1.0, len(images)).astype(np.float32)
    out = np.empty_like(images)
    for i, (image, kind, strength) in enumerate(zip(images, kinds, strengths, strict=True)):
        out[i] = degrade.degrade(image[None], KINDS[kind], strength, int(rng.integers(2**31)))[0]
    return out, kinds.astype(np.int32), strengths


def _batches(faces: TaggedFaces, index: np.ndarray, batch: int, seed: int) -> Any:
    """A keras PyDataset of half real (flipped at random), half degraded faces per batch."""
    import keras

    half = batch // 2

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(index)

        def __len__(self) -> int:
            return len(index) // half

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(index)

        def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            rng = np.random.default_rng([seed, self.epoch, i])
            real = self.order[i * half:(i + 1) * half]
            other = rng.choice(index, half, replace=False)
            reals = faces.images[real]
            flip = rng.random(half) < 0.5
            reals[flip] = reals[flip, :, ::-1]
            fakes, kinds, strengths = degraded_batch(faces.images[other], rng)
            both = np.concatenate([real, other])
            return np.concatenate([reals, fakes]).astype(np.float32), {
                "hair": faces.hair[both], "eyes": faces.eyes[both],
                "kind": np.concatenate([np.zeros(half, np.int32), kinds]),
                "strength": np.concatenate([np.zeros(half, np.float32), strengths]),
            }

    return Batches()


def evaluate(model: Any, faces: TaggedFaces, index: np.ndarray, seed: int) -> dict[str, float]:
    """Held-out accuracies: hair and eyes on the real faces; real vs degraded and the 5-way kind
    on the faces plus one degraded copy of each (fixed seed); the strength's mean absolute
    error on the degraded copies."""
    reals = faces.images[index]
    fakes, kinds, strengths = degraded_batch(reals, np.random.default_rng([seed, 1]))
    out_real = model.predict(reals.astype(np.float32), batch_size=256, verbose=0)
    out_fake = model.predict(fakes.astype(np.float32), batch_size=256, verbose=0)
    kind_real = out_real["kind"].argmax(1)
    kind_fake = out_fake["kind"].argmax(1)
    return {
        "hair": float(np.mean(out_real["hair"].argmax(1) == faces.hair[index])),
        "eyes": float(np.mean(out_real["eyes"].argmax(1) == faces.eyes[index])),
        "real_vs_degraded": float(np.mean(np.concatenate([kind_real == 0, kind_fake != 0]))),
        "kind": float(np.mean(np.concatenate([kind_real == 0, kind_fake == kinds]))),
        "strength_mae": float(np.mean(np.abs(out_fake["strength"][:, 0] - strengths))),
    }


def train(data: str | Path, epochs: int = 8, batch: int = 128, seed: int = 0,
          out_dir: Path = WEIGHTS_DIR, progress: bool = True) -> dict[str, Any]:
    """Train on the faces in `data`, write weights and facts into `out_dir`; returns the facts."""
    import keras
    from tqdm import tqdm

    start = time.perf_counter()
    faces = load_tagged_faces(data)
    train_index, held_index = split(len(faces.images))
    keras.utils.set_random_seed(seed)
    model = build_model(len(faces.hair_names), len(faces.eye_names))
    batches = _batches(faces, train_index, batch, seed)
    steps = epochs * len(batches)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
        loss={**{k: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                 for k in ("hair", "eyes", "kind")},
              "strength": keras.losses.MeanSquaredError()},
        # A squared error of strengths in [0, 1] is tens of times smaller than the
        # cross-entropies; weighted up, it shapes the features as much as they do.
        loss_weights={"hair": 1.0, "eyes": 1.0, "kind": 1.0, "strength": 10.0},
    )

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.bar = tqdm(total=steps, desc="anime encoder", unit="batch", disable=not progress)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.bar.update()
            if batch % 20 == 0 and logs:
                self.bar.set_postfix({k.removesuffix("_loss"): f"{v:.3f}"
                                      for k, v in logs.items() if k.endswith("_loss")})

        def on_train_end(self, logs: dict | None = None) -> None:
            self.bar.close()

    model.fit(batches, epochs=epochs, verbose=0, callbacks=[Bar()])
    accuracy = evaluate(model, faces, held_index, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Saved from an uncompiled copy: without Adam's moments, the file is a third of the size.
    shipped = build_model(len(faces.hair_names), len(faces.eye_names))
    shipped.set_weights(model.get_weights())
    shipped.save_weights(out_dir / WEIGHTS.name)
    facts = {
        "held_out": {k: round(v, 4) for k, v in accuracy.items()},
        "feature_dim": FEATURE_DIM,
        "image_size": SIZE,
        "hair_names": faces.hair_names,
        "eye_names": faces.eye_names,
        "kinds": list(KINDS),
        "data": f"{Path(data).name}: {len(faces.images)} tagged faces of tags.csv, "
                f"{len(held_index)} held out (seed {SPLIT_SEED})",
        "epochs": epochs,
        "batch": batch,
        "seed": seed,
        "parameters": int(model.count_params()),
        "train_seconds": round(time.perf_counter() - start, 1),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
    }
    (out_dir / FACTS.name).write_text(json.dumps(facts, indent=2) + "\n")
    return facts
