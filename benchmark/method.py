"""The one interface every method sits behind, and the method registry.

A method is a small class registered by name, built from plain keyword arguments (its
config). ``fit`` learns from a TrainingSet (no-op for classical methods); ``segment`` yields
``(frame id, HxW foreground probability)`` at the video's native size for every requested
frame: float32 in [0, 1], or uint8 meaning value / 255 (a binary method yields its 0/255
mask as is); thresholding is scoring's job.

Every method, built-in or plug-in, is an entry point of the ``bgbench.methods`` group
(``pyproject.toml``; README, 'Writing a plug-in method'). ``METHODS`` fills itself from
them when first read, and its entries' metadata (the class attributes below and the first
docstring line) is read from the classes' source (benchmark/catalog.py), so listing
methods imports neither torch nor OpenCV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from bgbench.catalog import MethodRegistry
from bgbench.errors import BadInput, MethodUnavailable
from bgbench.params import Param
from bgbench.data.video import TrainingSet, VideoView

METHODS: MethodRegistry = MethodRegistry("method")  # complete whenever read: filled from the entry points


def register_method(name: str, **meta: Any):
    """Class decorator: registers a Method under ``name`` (filling its lazy entry)."""

    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        return METHODS.register(name, **meta)(cls)

    return deco


class Method:
    """Base class. Subclasses set the class metadata and implement ``segment``.

    The metadata (``family``, ``trains``, ``configs``' names, ``gpu_capable``,
    ``default_protocol``, ``requires`` and the first docstring line, the summary) is read
    from the source without importing the class: give it literal values, in the class body
    (or a base's), e.g. ``family = "deep"``, ``configs = {"paper": {}, "smoke": {...}}``.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "classical"  # classical | deep
    trains: ClassVar[bool] = False
    input_size: ClassVar[tuple[int, int] | None] = None  # (width, height) it works at; None: native
    temporal_context: ClassVar[int] = 0  # earlier frames it needs before the first requested one
    warmup_frames: int = 1  # yields excluded from the speed figure (an instance may set its own)
    infer_batch: int = 1  # frames per segment batch (deep methods: their ``infer_batch`` parameter)
    precision: str = "float32"  # what segment computes in (deep methods: e.g. amp-fp16 under CUDA autocast)
    stage_steps: ClassVar[tuple[str, ...]] = ()  # parameters setting each training stage's steps (deep methods)
    # name -> (default, help[, choices or interval]) or Param (benchmark/params.py). The first
    # docstring line is the method's summary.
    params: ClassVar[dict[str, Any]] = {}
    configs: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    default_protocol: ClassVar[str] = "full"
    protocol_options: ClassVar[dict[str, Any]] = {}  # the paper's options for its default protocol
    paper_protocols: ClassVar[tuple[tuple[str, dict[str, Any]], ...]] = ()  # more experiments of its paper
    gpu_capable: ClassVar[bool] = False  # False: runs on the CPU whatever --device says
    # True: yields 0/255 masks only, so a run of it alone has no PR curve to draw and its report
    # needs no figure library (bgbench.api starts no report worker). A hint only: were it wrong,
    # the figure would still be drawn, after the jobs.
    binary_output: ClassVar[bool] = False
    # Set True by the run loop (bgbench.execution.runner.run_video) for its own segment calls:
    # the method may then yield torch tensors on its device, which are scored there
    # (bgbench.scoring.device); every other caller gets NumPy maps. Methods may ignore it.
    device_maps: bool = False
    # True: ``segment_videos`` runs several videos of one shape as one batch (e.g. gmm_sg's update
    # over a leading video axis), and ``bgbench run --video-batch N`` hands it up to N test videos
    # of a split at once (bgbench.execution.videorun.run_videos); each video's record is the one
    # ``segment`` alone would give, counts bit for bit.
    batches_videos: ClassVar[bool] = False
    requires: ClassVar[str] = ""  # how to install an optional dependency it imports (said when missing)
    # why its frames/s means nothing (e.g. masks read from disk): its jobs record fps None with this
    # note, and tables, plots and the CI gate read "n/a" / leave it out; None: segment is timed
    untimed: ClassVar[str | None] = None

    @classmethod
    def resolve(cls, config: str = "default", **overrides: Any) -> tuple[str, dict[str, Any]]:
        """(config name, parameter values) from defaults, the named config and overrides,
        without building anything. Unknown configs, parameters or values raise BadInput."""
        if config not in cls.configs and config == "default":
            config = next(iter(cls.configs))  # a deep method's first config: its paper's
        elif config not in cls.configs and "default" in cls.configs and config in ("smoke", "cpu", "paper"):
            config = "default"  # classical methods have one config; suites ask for smoke/cpu/paper
        if config not in cls.configs:
            raise BadInput(f"{cls.name} has no config {config!r}", "--config", f"use one of {', '.join(cls.configs)}")
        unknown = set(overrides) - set(cls.params)
        if unknown:
            raise BadInput(
                f"{cls.name} has no parameter {sorted(unknown)[0]!r}",
                "--set",
                f"its parameters: {', '.join(cls.params) or 'none'} (bgbench info {cls.name})",
            )
        specs = cls.param_specs()
        raw = {k: p.default for k, p in specs.items()}
        raw.update(cls.configs[config])
        raw.update(overrides)
        values = {k: specs[k].check(v, f"{cls.name}.{k}") for k, v in raw.items()}
        cls.validate(values)
        return config, values

    @classmethod
    def validate(cls, values: dict[str, Any]) -> None:
        """Rules across parameters (or beyond a type and a range): raise BadInput naming
        ``method.param``. Runs in ``resolve``, before anything is built."""

    @classmethod
    def job_inputs(cls, params: dict[str, Any], video: Any, frames: Sequence[int]) -> str | None:
        """A digest of what a job reads besides the video and the parameters' values (e.g. the
        ``masks`` method: the content of the mask files it reads for ``video``), added to the
        job's fingerprint, so that a job is recomputed when those files change. Called when the
        run is planned, before any job runs: BadInput here refuses the run. None: nothing more."""
        return None

    @classmethod
    def param_specs(cls) -> dict[str, Param]:
        """The declared parameters as Param records (type, default, choices or range, help)."""
        return {k: Param.of(v) for k, v in cls.params.items()}

    def __init__(self, config: str = "default", device: str = "cpu", seed: int = 0, **overrides: Any):
        config, values = self.resolve(config, **overrides)
        if self.gpu_capable:
            from bgbench.execution.device import resolve as resolve_device

            device = resolve_device(device)
        else:
            device = "cpu"
        self.config, self.device, self.seed, self.p = config, device, seed, values
        self.workdir: Path | None = None  # the run sets a folder for the method's own checkpoints
        self.history: list[dict[str, float]] = []  # training losses, kept in the results
        self.train_stats: dict[str, dict[str, float]] = {}  # per training stage: throughput, resumed_seconds
        self.pretrained: str | None = None  # set when the whole model was loaded from a file: not trained here

    @classmethod
    def check_available(cls) -> None:
        """Raise MethodUnavailable (with the fix) if an optional dependency is missing."""

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def fit(self, train: TrainingSet) -> None:
        """Learn from training material only. Classical methods do nothing."""

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError

    def segment_videos(self, videos: Sequence[VideoView], frames: Sequence[Sequence[int]]
                       ) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(video index, frame id, map)`` for several videos of one shape (``frames[i]``: the
        frames requested from ``videos[i]``), each video's maps in its frame order, the videos
        interleaved as the method likes. This default runs them one after another; a method
        that sets ``batches_videos`` overrides it to run them as one batch."""
        for i, (video, wanted) in enumerate(zip(videos, frames)):
            for fid, prob in self.segment(video, wanted):
                yield i, fid, prob

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def training_record(self) -> dict[str, Any] | None:
        """What training did, for the job record (``training``): per stage its name, the
        steps its config asks for, the steps trained and what stopped it (``steps``, or
        ``max_train_seconds`` when the clock ran out first); None for a method that did not
        train here."""
        stages = [{"name": tag, "steps_configured": int(s["steps_configured"]), "steps_trained": int(s["steps_trained"]),
                   "stopped_by": str(s["stopped_by"])} for tag, s in self.train_stats.items() if "steps_configured" in s]
        return {"stages": stages} if stages else None

    def describe(self) -> dict[str, Any]:
        """Parameter count and FLOPs for deep methods; empty for classical ones."""
        return {}

    def training_plan(self, sizes: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]] | None:
        """Training stages for ``bgbench run --dry-run`` (bgbench.dryrun): one dict per stage,
        ``stage``, ``steps``, ``trained_flops`` and ``frozen_flops`` (forward FLOPs of one step
        through the modules the stage trains, and through those it only runs). ``sizes``:
        (width, height, frames) of each training video. None: no estimate (classical methods
        train nothing)."""
        return None


def frames_through(video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, int, np.ndarray, bool]]:
    """``(index, frame id, image, requested)`` for a video's frames in order, from its first
    frame up to the last requested one: how online methods that learn from every preceding
    frame walk a video. The view notes that it was walked (``walked``, frames handed out): the
    runner's FPS then counts every frame up to each yielded one, not only the scored ones."""
    wanted = set(frames)
    last = max(wanted)
    stack = video.all_frames()
    for k, fid in enumerate(video.frame_ids):
        if fid > last:
            return
        if hasattr(video, "walked"):
            video.walked += 1
        yield k, fid, stack[k], fid in wanted


def method_class(name: str) -> type[Method]:
    """The class registered as ``name``, imported; a missing dependency raises
    MethodUnavailable with the class's ``requires`` hint."""
    entry = METHODS.entry(name)
    try:
        cls = entry.resolve()
    except ImportError as e:
        hint = entry.meta.get("requires") or f"install the missing module {e.name!r}"
        raise MethodUnavailable(f"{name} is unavailable here: {e}", name, hint) from None
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise BadInput(f"{entry.target} is not a bgbench.method.Method subclass", name,
                       "point the plug-in's bgbench.methods entry point at its Method subclass")
    if not cls.__dict__.get("name"):
        cls.name = name  # a plug-in class need not use register_method
    return cls


def build_method(name: str, config: str = "default", device: str = "cpu", seed: int = 0, **overrides: Any) -> Method:
    cls = method_class(name)
    return cls(config=config, device=device, seed=seed, **overrides)
