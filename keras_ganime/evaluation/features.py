"""Feature extractors for the metrics, and `compute_metrics`, the one call that evaluates a set
of generated faces against real ones.

Extractors (`get_extractor(name)`), each mapping uint8 (N, H, W, 3) images of any size to float32
features (N, D), in batches:
    anime      the project's anime-face encoder (`encoder.py`), D = 256, from the weights that
               ship in keras_ganime/evaluation/weights/; images resized to 64x64
    inception  InceptionV3's pool3 (include_top=False, pooling="avg"), D = 2048, from a weights
               file that the user names (nothing is downloaded); images resized to 299x299

A metric's name says its extractor: fid_anime, kid_anime, dup_anime, fid_inception,
kid_inception, dup_inception; swd and checkerboard work on the pixels (see `compute_metrics`).
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_ganime import errors, metric_names
from keras_ganime.evaluation import encoder, metrics
from keras_ganime.metric_names import EXTRACTORS

__all__ = ["Extractor", "FeatureError", "compute_metrics",
           "get_extractor"]

INCEPTION_SIZE = 299


class FeatureError(errors.Error, ValueError):
    """A bad extractor, weights file or metric name; its message is one line naming it."""


class Extractor:
    """uint8 images (N, H, W, 3) -> float32 features (N, dim), `batch_size` images at a time.

    `model` takes float32 images of side `size` with values in [0, 255] (already preprocessed by
    `preprocess` if given) and returns the features; it runs in inference mode, so the features
    of an image are the same on every call.
    """

    def __init__(self, name: str, model: Any, size: int, dim: int,
                 preprocess: Callable[[Any], Any] | None = None) -> None:
        import keras

        self.name, self.size, self.dim = name, size, dim
        if keras.backend.backend() != "tensorflow":
            # Keras compiles the model's inference for its backend (JAX: jax.jit), per shape.
            def run(images: Any) -> Any:
                x = np.asarray(images, np.float32)
                return model.predict_on_batch(x if preprocess is None else preprocess(x))

            self._embed = run
            self._resize = keras.ops.image.resize
            return
        import tensorflow as tf

        # One traced graph for every batch size (the last batch is usually short).
        @tf.function(reduce_retracing=True, autograph=False)
        def embed(images: tf.Tensor) -> tf.Tensor:
            x = tf.cast(images, tf.float32)
            if preprocess is not None:
                x = preprocess(x)
            return model(x, training=False)

        self._embed = embed
        self._resize = tf.image.resize

    def __call__(self, images: np.ndarray, batch_size: int = 256,
                 progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise FeatureError(f"{self.name} extractor needs uint8 (N, H, W, 3) images, "
                               f"got {images.dtype} {images.shape}")
        out = np.empty((len(images), self.dim), np.float32)
        with tqdm(total=len(images), desc=f"{self.name} features", unit="img",
                  disable=not progress) as bar:
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size]
                if chunk.shape[1:3] != (self.size, self.size):
                    chunk = self._resize(chunk, (self.size, self.size), "bilinear",
                                         antialias=True)
                out[start:start + len(chunk)] = np.asarray(self._embed(chunk))
                bar.update(len(chunk))
        return out


def anime_extractor(weights: str | Path | None = None) -> Extractor:
    """The project's anime-face encoder, from the weights shipped with the package (read when
    called, so that a test can point encoder.WEIGHTS elsewhere)."""
    import keras

    model = _anime_encoder(weights)
    features = keras.Model(model.input, model.get_layer("features").output)
    return Extractor("anime", features, encoder.SIZE, encoder.FEATURE_DIM)


def anime_colours(weights: str | Path | None = None
                  ) -> tuple[Extractor, dict[str, tuple[str, ...]]]:
    """The encoder's colour heads as an extractor of their logits side by side (hair's, then
    eyes'), and each head's colours in its logits' order (the encoder's card)."""
    import keras

    model = _anime_encoder(weights)
    facts = json.loads(encoder.FACTS.read_text())
    names = {"hair": tuple(facts["hair_names"]), "eyes": tuple(facts["eye_names"])}
    logits = keras.layers.Concatenate()([model.get_layer(n).output for n in names])
    return (Extractor("anime colours", keras.Model(model.input, logits), encoder.SIZE,
                      sum(map(len, names.values()))), names)


def _anime_encoder(weights: str | Path | None = None) -> Any:
    weights = Path(weights or encoder.WEIGHTS)
    if not weights.is_file():
        raise FeatureError(f"{weights}: no such file; the anime encoder's weights ship with the "
                           "package: reinstall it from where it came (pip install "
                           "--force-reinstall --no-deps . in its clone, or git+URL) or retrain "
                           "them (python -m keras_ganime.evaluation.encoder --data FOLDER)")
    model = encoder.build_model()
    try:
        with warnings.catch_warnings():
            # Keras 3.1x warns about the functional model's internal "_operations_by_depth"
            # container on every load; every layer's weights were checked to load regardless.
            warnings.filterwarnings("ignore", message="Skipping nested container")
            model.load_weights(weights)
    except (OSError, ValueError, KeyError) as e:
        raise FeatureError(f"{weights}: not weights of the anime encoder "
                           f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    return model


def inception_extractor(weights: str | Path) -> Extractor:
    """InceptionV3 pool3 features from a local weights file for include_top=False."""
    import keras

    weights = Path(weights)
    if not weights.is_file():
        raise FeatureError(f"{weights}: no such InceptionV3 weights file")
    try:
        model = keras.applications.InceptionV3(weights=str(weights), include_top=False,
                                               pooling="avg")
    except Exception as e:  # noqa: BLE001 - h5py, Keras and TF each fail in their own way
        raise FeatureError(f"{weights}: not InceptionV3 weights for include_top=False "
                           f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    return Extractor("inception", model, INCEPTION_SIZE, model.output_shape[-1],
                     preprocess=keras.applications.inception_v3.preprocess_input)


@functools.lru_cache(maxsize=4)
def get_extractor(name: str, inception_weights: str | None = None) -> Extractor:
    """The extractor called `name` (one of EXTRACTORS), built once per process.

    `inception` needs `inception_weights`, the path of a local InceptionV3 weights file for
    include_top=False (e.g. Keras' inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5).
    """
    if name == "anime":
        return anime_extractor()
    if name == "inception":
        if not inception_weights:
            raise FeatureError("the inception extractor needs an InceptionV3 weights file "
                               "(inception_weights); none is downloaded")
        return inception_extractor(inception_weights)
    raise FeatureError(f"unknown feature extractor {name!r}; choose from {', '.join(EXTRACTORS)}")


def _parse(name: str) -> tuple[str, str | None]:
    try:
        return metric_names.parse(name)
    except metric_names.MetricNameError as e:
        raise FeatureError(str(e)) from None


def compute_metrics(real: np.ndarray, fake: np.ndarray, names: Sequence[str],
                    inception_weights: str | None = None,
                    real_features: Mapping[str, np.ndarray] | None = None,
                    progress: bool = False, seed: int = 0, swd_patches: int = 65536,
                    kid_subsets: int = 100, kid_subset_size: int = 1000) -> dict[str, float]:
    """The metrics `names` of the generated uint8 images `fake` against the real ones `real`.

    Names (any subset, in any order; the result has one float per name, and beside an SWD
    named N its patches per level, N_patches, metrics.swd_patch_count):
        fid_<extractor>   Fréchet distance of the features (metrics.fid)
        kid_<extractor>   kernel distance, the mean over `kid_subsets` subsets of up to
                          `kid_subset_size` faces (metrics.kid)
        dup_<extractor>   duplicate rate of the fakes, about 0.01 when they are spread like the
                          reals, near 1 under mode collapse (metrics.duplicate_rate)
        swd               sliced Wasserstein distance x1e3, mean over the pyramid levels of 64,
                          32 and 16 px for 64x64 images (metrics.swd; both sets the same size)
        checkerboard      Nyquist energy ratio of the fakes, about 1 or less when clean
                          (metrics.checkerboard_score)
    where <extractor> is anime or inception (the latter needs `inception_weights`). Each
    extractor embeds each set once, whichever of its metrics are asked for; pass
    `real_features` ({extractor name: get_extractor(name)(real)}) to reuse the real set's
    features across calls, as a training loop evaluating against a fixed real set should.
    Set sizes: both at least 2; FID needs more images than feature dimensions (256 for anime,
    2048 for inception) to be meaningful, and is biased upwards for small sets, so compare
    values only between equal set sizes. `seed` fixes KID's subsets, the duplicate rate's
    sampling and SWD's patches and directions; `swd_patches` caps SWD's patches per level and
    set (65536 by default, this project's cap on memory: ProGAN takes 128 from every image
    with no cap, so above 512 images its figures rest on more patches and are less noisy;
    fewer is proportionally faster and noisier: compare SWD only at equal patch counts, which
    the result records). SWD
    and KID (100 subsets of 1000 by default, as Bińkowski et al.) are the slow parts on a CPU: for
    evaluations during training, fewer patches and subsets keep them to seconds. On busy cores,
    OPENBLAS_NUM_THREADS=1 (set before numpy is imported) made FID's 256x256 eigh 15 times
    faster here (0.01 s against 0.15 s; OpenBLAS's threads wait on each other).
    """
    parsed = {name: _parse(name) for name in names}
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for extractor in dict.fromkeys(e for _, e in parsed.values() if e is not None):
        extract = get_extractor(extractor, inception_weights if extractor == "inception" else None)
        reals = (real_features or {}).get(extractor)
        if reals is None:
            reals = extract(real, progress=progress)
        features[extractor] = reals, extract(fake, progress=progress)

    result: dict[str, float] = {}
    for name, (metric, extractor) in parsed.items():
        if metric == "swd":
            result[name] = metrics.swd(real, fake, max_patches=swd_patches, seed=seed)["swd_mean"]
            # Beside the figure, its patches per level: SWDs compare only at equal counts.
            result[f"{name}_patches"] = metrics.swd_patch_count(len(real), len(fake),
                                                                max_patches=swd_patches)
        elif metric == "checkerboard":
            result[name] = metrics.checkerboard_score(fake)
        else:
            reals, fakes = features[extractor]
            if metric == "fid":
                result[name] = metrics.fid(reals, fakes)
            elif metric == "kid":
                result[name] = metrics.kid(reals, fakes, kid_subsets, kid_subset_size, seed)[0]
            else:
                result[name] = metrics.duplicate_rate(fakes, reals, seed=seed)
    return result
