"""The planner in process: a Qwen2.5-VL / Qwen3-VL checkpoint through transformers, optionally
with a LoRA adapter from ``restora train planner sft|grpo`` (peft), no server.

:func:`load_planner` loads (base, adapter) once per process; :class:`HFBackend` answers the VLM
planner's questions with it (greedy). With ``constrained`` on, generation is constrained to the
question's JSON schema by xgrammar's transformers logits processor (the grammar compiled once per
schema and tokenizer; the ``planner`` extra installs xgrammar), so every reply is a well-formed
answer in the schema; every reply is still validated by :class:`~restora.planners.vlm.VLMPlanner`,
which retries and falls back to the heuristic planner when one is not.

Images are capped at :data:`MAX_IMAGE_SIDE` before the processor sees them, the size the
OpenAI-compatible backend sends (``vlm.data_url``) and the trainer trains at, so the three see the
same pixels.

Examples:
    >>> backend = HFBackend("out/tiny-planner", adapter="runs/planner/adapter", constrained=True)   # doctest: +SKIP
    >>> planner = VLMPlanner(backend)                                              # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from restora.errors import RestoraError

MAX_IMAGE_SIDE = 448
"""Longest side of the image a planner is shown (vlm.data_url's default): training and serving alike."""
HARD_IMAGE_SIDE = 1024
"""No planner image may be larger (one image per prompt; a Qwen-VL image of 1024 px is ~1.3k tokens)."""
DEFAULT_MAX_TOKENS = 512


class PlannerLoadError(RestoraError):
    """The planner checkpoint or its adapter could not be loaded."""


def cap_image(image: Any, max_side: int = MAX_IMAGE_SIDE) -> Any:
    """A PIL image (from a PIL image or float32 RGB in [0, 1]) whose longest side is at most
    ``max_side`` (area-downscaled, aspect kept).

    Examples:
        >>> cap_image(np.zeros((900, 300, 3), np.float32), 448).size
        (149, 448)
    """
    from PIL import Image

    if max_side > HARD_IMAGE_SIDE:
        raise ValueError(f"the planner's image side is capped at {HARD_IMAGE_SIDE} px, got {max_side}")
    if not isinstance(image, Image.Image):
        arr = np.asarray(image)
        image = Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8))
    image = image.convert("RGB")
    w, h = image.size
    if max(w, h) > max_side:
        s = max_side / max(w, h)
        image = image.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BOX)
    return image


def load_processor(base: str | os.PathLike[str], padding_side: str = "left") -> Any:
    """The base checkpoint's processor, its tokenizer padding on ``padding_side``.

    Left padding is what generation (and TRL's GRPO, which pads prompts left and asks the
    processor again for ``mm_token_type_ids``: TRL #5785) needs.
    """
    from transformers import AutoProcessor

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        processor = AutoProcessor.from_pretrained(str(base), padding_side=padding_side)
    except (OSError, ValueError) as e:
        raise PlannerLoadError(f"cannot load the planner's processor from {base}: {e}") from None
    processor.tokenizer.padding_side = padding_side
    return processor


@functools.lru_cache(maxsize=2)
def _load(base: str, adapter: str | None, device: str, dtype: str, stamp: tuple[int, ...]) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForImageTextToText

    try:
        model = AutoModelForImageTextToText.from_pretrained(base, dtype=getattr(torch, dtype))
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
            model = model.merge_and_unload()  # plain weights: generation runs at the base model's speed
    except (OSError, ValueError) as e:
        raise PlannerLoadError(f"cannot load the planner from {base}{f' with adapter {adapter}' if adapter else ''}: {e}") from None
    return model.to(device).eval(), load_processor(base)


def load_planner(base: str | os.PathLike[str], adapter: str | os.PathLike[str] | None = None, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any]:
    """``(model, processor)`` of a planner checkpoint, with ``adapter`` (a LoRA folder, or a run
    folder holding ``adapter/``) merged in; cached per (folder, adapter, device, dtype) and the
    files' modification times, so a retrained adapter is loaded again."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base_path = Path(base).expanduser()
    if not base_path.is_dir():
        raise PlannerLoadError(f"planner checkpoint {base} is not a folder (give a local checkpoint folder)")
    ad = None
    if adapter is not None:
        from restora.model_zoo.planner import planner_adapter

        ad = planner_adapter(adapter)
    stamp = tuple(p.stat().st_mtime_ns for p in sorted(base_path.glob("*.safetensors")))
    if ad is not None:
        stamp += tuple(p.stat().st_mtime_ns for p in sorted(ad.glob("*.safetensors")))
    return _load(str(base_path.resolve()), None if ad is None else str(ad.resolve()), device, dtype, stamp)


def json_end(text: str) -> int | None:
    """Where the first JSON object of ``text`` ends (index after its closing brace), -1 when
    ``text`` cannot start one (its first non-blank character is not ``{``), None when unfinished.

    Examples:
        >>> json_end('{"a": "}"} more'), json_end('{"a": {'), json_end('garbage {')
        (10, None, -1)
    """
    depth, in_string, escaped = 0, False, False
    for i, ch in enumerate(text):
        if depth == 0 and not ch.isspace() and ch != "{":
            return -1
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _json_stopper(processor: Any, prompt_len: int) -> Any:
    """Stops generation once the reply holds one whole JSON object, or cannot be one: the planner
    asks for exactly one object, and a reply that does not start with ``{`` is invalid however it
    goes on (greedy replies of untrained weights run to the token cap otherwise)."""
    import torch
    from transformers import StoppingCriteria

    class Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            text = processor.decode(input_ids[0, prompt_len:], skip_special_tokens=True)
            done = json_end(text) is not None
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return Stop()


def generate(
    model: Any,
    processor: Any,
    messages: list[dict[str, Any]],
    images: list[Any],
    max_new_tokens: int = DEFAULT_MAX_TOKENS,
    max_side: int = MAX_IMAGE_SIDE,
    grammar: Any = None,
) -> str:
    """The greedy reply of ``model`` to chat ``messages`` whose image parts take ``images`` in order
    (cut after its first whole JSON object: see :func:`_json_stopper`); under ``grammar`` (an
    xgrammar ``CompiledGrammar``, :func:`compile_schema`) when given, so the reply is in it."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    pil = [cap_image(i, max_side) for i in images]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=pil or None, return_tensors="pt").to(model.device)
    n = inputs["input_ids"].shape[1]
    extra: dict[str, Any] = {}
    if grammar is not None:
        from xgrammar.contrib.hf import LogitsProcessor

        extra["logits_processor"] = LogitsProcessorList([LogitsProcessor(grammar)])  # one per generate() call: it keeps state
    with torch.inference_mode():
        out = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, stopping_criteria=StoppingCriteriaList([_json_stopper(processor, n)]), **extra
        )
    reply = str(processor.decode(out[0, n:], skip_special_tokens=True))
    end = json_end(reply)
    return reply[:end] if end is not None and end > 0 else reply


# -- constrained decoding (xgrammar) --------------------------------------------------------------

XGRAMMAR_HINT = "pip install 'restora[planner]' (xgrammar)"
"""How to get constrained decoding where it is missing."""


class ConstrainedDecodingError(PlannerLoadError):
    """Constrained decoding was asked for and cannot be had (xgrammar missing, schema refused)."""


def xgrammar_version() -> str | None:
    """xgrammar's version, or None when it is not installed (then replies are not constrained)."""
    try:
        import xgrammar  # noqa: F401 - installed and importable (its compiled bindings load)
    except ImportError:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xgrammar")
    except PackageNotFoundError:
        return "unknown"


_COMPILERS: dict[tuple[int, int, tuple[int, ...]], tuple[Any, Any]] = {}
_COMPILERS_LOCK = threading.Lock()


def _vocab_size(model: Any) -> int:
    """Rows of the LM head: the logits' width (Qwen pads it past the tokenizer's length)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.get_text_config().vocab_size)


def _stop_ids(model: Any, processor: Any) -> list[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = processor.tokenizer.eos_token_id
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def compile_schema(model: Any, processor: Any, schema: dict[str, Any]) -> Any:
    """The xgrammar ``CompiledGrammar`` of JSON ``schema`` for this model's tokenizer and LM head,
    compact as the training answers are (no whitespace, ``,`` and ``:`` separators, properties in
    the schema's order, no property the schema does not name). Compilers are kept per tokenizer,
    and xgrammar caches each schema's grammar (the action schema takes a few seconds once).

    Raises:
        ConstrainedDecodingError: xgrammar is missing, or it cannot compile ``schema``.
    """
    try:
        import xgrammar as xgr
    except ImportError:
        raise ConstrainedDecodingError(f"constrained decoding needs xgrammar, which is not installed: {XGRAMMAR_HINT}") from None
    tokenizer = processor.tokenizer
    stops = tuple(_stop_ids(model, processor))
    key = (id(tokenizer), _vocab_size(model), stops)
    with _COMPILERS_LOCK:
        held = _COMPILERS.get(key)
        if held is None or held[0] is not tokenizer:
            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=key[1], stop_token_ids=list(stops))
            held = (tokenizer, xgr.GrammarCompiler(info, max_threads=2))
            _COMPILERS[key] = held
    try:
        return held[1].compile_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":"), strict_mode=True)
    except Exception as e:  # noqa: BLE001 - xgrammar raises its own and RuntimeErrors for schemas it refuses
        raise ConstrainedDecodingError(f"xgrammar cannot compile the reply schema: {type(e).__name__}: {e}") from None


class HFBackend:
    """In-process planner backend (transformers, plus a peft adapter when given).

    Args:
        model: a local checkpoint folder (the base).
        adapter: a LoRA adapter folder or a ``restora train planner`` run folder (its ``adapter/``).
        device: where the model runs.
        max_tokens: reply length cap.
        constrained: decode under the question's JSON schema with xgrammar: True requires it
            (:class:`ConstrainedDecodingError` here when xgrammar is missing), None uses it when
            xgrammar is installed and says why not otherwise, False never (the raw model's replies:
            what ``restora eval planner`` and the trainers' held-out figures measure). An empty
            schema is never constrained.
        loaded: an already loaded ``(model, processor)`` (the trainers evaluate their model in memory).

    After each :meth:`complete`, :meth:`last_decoding` says how that reply was decoded (per thread).
    """

    name = "hf"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        adapter: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        max_tokens: int = DEFAULT_MAX_TOKENS,
        *,
        constrained: bool | None = False,
        loaded: tuple[Any, Any] | None = None,
    ) -> None:
        if model is None and loaded is None:
            raise ValueError("HFBackend needs a checkpoint folder or a loaded (model, processor)")
        if constrained is True and xgrammar_version() is None:
            raise ConstrainedDecodingError(f"constrained decoding needs xgrammar, which is not installed: {XGRAMMAR_HINT}")
        self.path = None if model is None else str(model)
        self.adapter = None if adapter is None else str(adapter)
        self.device = device
        self.max_tokens = max_tokens
        self.constrained = constrained
        self._loaded = loaded
        self._lock = threading.Lock()
        self._local = threading.local()

    def loaded(self) -> tuple[Any, Any]:
        if self._loaded is None:
            assert self.path is not None
            self._loaded = load_planner(self.path, self.adapter, self.device)
        return self._loaded

    def last_decoding(self) -> dict[str, Any] | None:
        """How this thread's last reply was decoded: ``{"backend": "hf", "constrained": bool,
        "by": "xgrammar X.Y.Z"}`` when constrained, else with ``"why"`` it was not."""
        return getattr(self._local, "decoding", None)

    def _grammar(self, model: Any, processor: Any, schema: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The compiled grammar for ``schema`` (None when unconstrained) and the decoding record."""
        if not schema:
            return None, {"backend": self.name, "constrained": False, "why": "no schema given"}
        if self.constrained is False:
            return None, {"backend": self.name, "constrained": False, "why": "constrained decoding is off"}
        try:
            grammar = compile_schema(model, processor, schema)
        except ConstrainedDecodingError as e:
            if self.constrained is True:
                raise
            return None, {"backend": self.name, "constrained": False, "why": str(e)}
        return grammar, {"backend": self.name, "constrained": True, "by": f"xgrammar {xgrammar_version()}"}

    def complete(self, messages: list[dict[str, Any]], images: list[np.ndarray], schema: dict[str, Any], schema_name: str) -> str:
        from restora.planners.vlm import BackendError

        with self._lock:
            try:
                model, processor = self.loaded()
                grammar, decoding = self._grammar(model, processor, schema)
            except PlannerLoadError as e:
                self._local.decoding = {"backend": self.name, "constrained": False, "why": str(e)}
                raise BackendError(str(e)) from None
            self._local.decoding = decoding
            return generate(model, processor, messages, images, self.max_tokens, grammar=grammar)
