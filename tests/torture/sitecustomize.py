"""Test-only: a training process that SIGKILLs itself at one chosen moment of its writes.

tests/test_torture.py puts this directory on the PYTHONPATH of the training subprocesses it
starts, nowhere else, so that Python's `site` imports it at start-up; keras_ganime holds no hook
of its own. GANIME_TORTURE_KILL_AT names the moment, counted from this process's start:

    replace:GLOB:N    before the N-th os.replace onto a file whose name matches GLOB: the
                      temporary file is complete, the rename not yet done (the JAX engine's
                      checkpoints are such files: ckpt-K.npz)
    replaced:GLOB:N   just after that rename, before whatever comes next
    merge:N           inside the N-th checkpoint write: TensorFlow's SaveV2 has written the
                      shards into ckpt-K_temp/, MergeV2Checkpoints has not yet renamed them
    state:N           before the N-th rename of checkpoints/checkpoint (TensorFlow's index of
                      the checkpoints, written twice per save: before and after the old ones
                      are deleted)
    step:N            just after the step counter reaches N, before the loop logs or writes

Just before the kill it writes one line to stderr, "torture: SIGKILL at MOMENT (step S)", so
that the test knows the kill came from here and when.
"""

from __future__ import annotations

import fnmatch
import importlib.abc
import importlib.util
import os
import signal
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

SPEC = os.environ.get("GANIME_TORTURE_KILL_AT", "")
_counts: dict[str, int] = {}
_engines: list[Any] = []  # the process's engine, for the step the kill line reports


def _step() -> str:
    try:
        return str(_engines[-1].step_count()) if _engines else "none yet"
    except Exception as e:  # noqa: BLE001 - the line must come out whatever the state
        return f"unknown: {e}"


def _kill(moment: str) -> None:
    sys.stderr.write(f"torture: SIGKILL at {moment} (step {_step()})\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _due(kind: str, target: str = "") -> bool:
    """Counts one event of this kind (on this target); True at the N-th, as SPEC says."""
    parts = SPEC.split(":")
    if parts[0] != kind or (target and not fnmatch.fnmatch(target, parts[1])):
        return False
    _counts[kind] = _counts.get(kind, 0) + 1
    return _counts[kind] == int(parts[-1])


def _patch_replace() -> None:
    replace = os.replace

    def torture_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        name = os.path.basename(os.fspath(dst))
        if _due("replace", name):
            _kill(f"{SPEC} ({dst})")
        replace(src, dst, *args, **kwargs)
        if _due("replaced", name):
            _kill(f"{SPEC} ({dst})")

    os.replace = torture_replace


def _patch_merge(gen_io_ops: ModuleType) -> None:
    merge = gen_io_ops.merge_v2_checkpoints

    def torture_merge(checkpoint_prefixes: Any, destination_prefix: Any, *args: Any,
                      **kwargs: Any) -> Any:
        if _due("merge"):
            prefix = getattr(destination_prefix, "numpy", lambda: destination_prefix)()
            _kill(f"{SPEC} ({os.fsdecode(prefix)})")
        return merge(checkpoint_prefixes, destination_prefix, *args, **kwargs)

    gen_io_ops.merge_v2_checkpoints = torture_merge


def _patch_rename(file_io: ModuleType) -> None:
    # file_io.atomic_write_string_to_file looks `rename` up in its module at each call.
    rename = file_io.rename

    def torture_rename(oldname: Any, newname: Any, *args: Any, **kwargs: Any) -> None:
        if os.path.basename(str(newname)) == "checkpoint" and _due("state"):
            _kill(f"{SPEC} ({oldname})")
        rename(oldname, newname, *args, **kwargs)

    file_io.rename = torture_rename


def _patch_engine(name: str) -> Callable[[ModuleType], None]:
    """A patch of the engine class `name` (TensorFlow's or JAX's) for the `step` moment."""
    def patch(module: ModuleType) -> None:
        cls = getattr(module, name)
        init = cls.__init__

        def torture_init(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            _engines.append(self)
            train_step = self.train_step

            def step() -> Any:
                values = train_step()
                if SPEC.startswith("step:") and self.step_count() == int(SPEC.split(":")[1]):
                    _kill(SPEC)
                return values

            self.train_step = step

        cls.__init__ = torture_init

    return patch


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches a module the moment it has been executed, so that nothing here imports
    TensorFlow or keras_ganime ahead of the program (keras_ganime sets TensorFlow's environment
    before TensorFlow first loads)."""

    def __init__(self, patches: dict[str, Callable[[ModuleType], None]]) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        patch = self.patches.pop(name, None)
        if patch is None:
            return None
        spec = importlib.util.find_spec(name)  # the other finders': this one has let go of it
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if SPEC:
    _patch_replace()
    sys.meta_path.insert(0, _AfterImport({
        "tensorflow.python.ops.gen_io_ops": _patch_merge,
        "tensorflow.python.lib.io.file_io": _patch_rename,
        "keras_ganime.engines.tensorflow": _patch_engine("Engine"),
        "keras_ganime.engines.jax": _patch_engine("JaxEngine"),
    }))
