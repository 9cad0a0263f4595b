"""The VLM planner: a vision-language model perceives the image and chooses the next step.

Each turn it sends the current image (and the original, once steps were kept) with the tool
catalogue generated from the registry and the history of steps, and asks twice, each answer
constrained by a JSON schema (``response_format`` json_schema, never ``guided_json``) and
validated here:

1. **perception** (once per distinct image): every degradation with ``present`` and
   ``severity``, the same shape as :mod:`restora.perception`'s findings, so the two compare;
2. **the next step**: one action in the schema of :mod:`restora.planners.schema`.

A reply that fails validation is sent back with the error, up to ``max_retries`` times; when no
valid step comes (garbage, a server that is down or slow), the heuristic planner decides and the
action says so in ``fallback`` (the trace records it). Nothing is ever ``eval``-ed.

Two backends, one planner: :class:`OpenAIBackend` (any OpenAI-compatible server, e.g. vLLM, which
decodes under the schema) and :class:`TransformersBackend` (in-process Qwen2.5-VL / Qwen3-VL through
transformers, constrained to the schema by xgrammar when it is installed). How each action's reply
was decoded (constrained or not, and why not; attempts) is in ``Action.decoding``, which the trace
records.

Examples:
    >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", model="restora-planner")   # doctest: +SKIP
    >>> planner = VLMPlanner(backend)                                                  # doctest: +SKIP
    >>> restore(image, planner=planner)                                                # doctest: +SKIP
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from restora.errors import RestoraError
from restora.planners.base import Action, Observation
from restora.planners.prompt import chat_messages, system_prompt, user_text
from restora.planners.schema import ActionError, action_schema, parse_action, read_reply
from restora.taxonomy import Degradation

DEFAULT_MAX_TOKENS = 512


class BackendError(RestoraError):
    """The model could not be asked (server down, timeout, HTTP error, model failure)."""


def perception_schema() -> dict[str, Any]:
    """JSON schema of the VLM's perception: every degradation with present and severity."""
    finding = {
        "type": "object",
        "properties": {"present": {"type": "boolean"}, "severity": {"type": "number", "minimum": 0, "maximum": 1}},
        "required": ["present", "severity"],
        "additionalProperties": False,
    }
    names = [d.value for d in Degradation]
    return {
        "type": "object",
        "properties": {
            "findings": {
                "type": "object",
                "properties": {n: finding for n in names},
                "required": names,
                "additionalProperties": False,
            }
        },
        "required": ["findings"],
        "additionalProperties": False,
    }


def parse_perception(reply: str) -> dict[str, Any]:
    """Validate a perception reply; return ``{"findings": {name: {"present", "severity"}}}``."""
    data = read_reply(reply)
    findings = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(findings, dict):
        raise ActionError("expected an object with 'findings'")
    out = {}
    for d in Degradation:
        f = findings.get(d.value)
        if not isinstance(f, dict) or not isinstance(f.get("present"), bool):
            raise ActionError(f"findings.{d.value}: expected {{'present': bool, 'severity': 0..1}}")
        sev = f.get("severity")
        if not isinstance(sev, (int, float)) or not 0.0 <= float(sev) <= 1.0:
            raise ActionError(f"findings.{d.value}.severity must be a number in [0, 1], got {sev!r}")
        out[d.value] = {"degradation": d.value, "present": f["present"], "severity": float(sev)}
    extra = set(findings) - {d.value for d in Degradation}
    if extra:
        raise ActionError(f"unknown degradations in findings: {sorted(extra)}")
    return {"findings": out}


def perception_messages(answer: str | None = None) -> list[dict[str, Any]]:
    """The perception question (system + user with one image), and the answer when given: what
    the planner asks at run time and what ``restora train planner`` trains it to answer."""
    text = (
        "What is wrong with this photo? For each degradation ("
        + ", ".join(d.value for d in Degradation)
        + ') say whether it is present and how severe it is (0 none .. 1 extreme). Answer one JSON object: {"findings": {...}}.'
    )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": "You assess image quality for a photo-restoration system."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]},
    ]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def perception_answer(labels: Mapping[str, Any]) -> str:
    """The perception reply for a picture with these :func:`restora.degrade.compose` labels
    (every degradation, in taxonomy order; severities to 2 decimals).

    Examples:
        >>> perception_answer({"noise": {"severity": 0.456, "sigma": 20}})[:60]
        '{"findings":{"noise":{"present":true,"severity":0.46},"motio'
    """
    findings = {
        d.value: {"present": d.value in labels, "severity": round(float(labels[d.value]["severity"]), 2) if d.value in labels else 0.0}
        for d in Degradation
    }
    return json.dumps({"findings": findings}, separators=(",", ":"))


def data_url(image: np.ndarray, max_side: int = 448) -> str:
    """A PNG data URL of ``image`` (float32 RGB in [0, 1]), area-downscaled to ``max_side``."""
    import cv2
    from PIL import Image

    h, w = image.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    u8 = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class Backend(Protocol):
    name: str

    def complete(self, messages: list[dict[str, Any]], images: list[np.ndarray], schema: dict[str, Any], schema_name: str) -> str:
        """One reply to ``messages`` (their ``{"type": "image"}`` parts take ``images`` in order)."""
        ...


class OpenAIBackend:
    """An OpenAI-compatible chat-completions server (vLLM's ``/v1``), over HTTP.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model name.
        api_key: sent as a bearer token (vLLM accepts any unless started with ``--api-key``).
        timeout: seconds per request (connect and read).
        max_concurrency: requests in flight at once from this process (batch runs use threads).
        max_tokens: reply length cap (a model that rambles is cut here, and the reply fails validation).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        timeout: float = 60.0,
        max_concurrency: int = 4,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), headers={"Authorization": f"Bearer {api_key}"})
        self._slots = threading.BoundedSemaphore(max(1, int(max_concurrency)))

    def complete(self, messages: list[dict[str, Any]], images: list[np.ndarray], schema: dict[str, Any], schema_name: str) -> str:
        import httpx

        payload = {
            "model": self.model,
            "messages": _openai_messages(messages, images),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "response_format": {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema, "strict": True}},
        }
        with self._slots:
            try:
                r = self._client.post(f"{self.base_url}/chat/completions", json=payload)
            except httpx.TimeoutException as e:
                raise BackendError(f"planner server timed out: {type(e).__name__}") from None
            except httpx.HTTPError as e:
                raise BackendError(f"planner server unreachable at {self.base_url}: {type(e).__name__}: {e}") from None
        if r.status_code != 200:
            raise BackendError(f"planner server answered HTTP {r.status_code}: {r.text[:300]}")
        try:
            return str(r.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise BackendError(f"planner server sent an unexpected body: {type(e).__name__}: {r.text[:200]}") from None

    def last_decoding(self) -> dict[str, Any]:
        """The server is asked to decode under the schema (vLLM does it with its own backend)."""
        return {"backend": self.name, "constrained": True, "by": "the server (response_format json_schema)"}

    def close(self) -> None:
        self._client.close()


def _openai_messages(messages: list[dict[str, Any]], images: list[np.ndarray]) -> list[dict[str, Any]]:
    pending = list(images)
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            out.append({"role": m["role"], "content": content})
            continue
        parts = []
        for c in content:
            if c.get("type") == "image":
                if not pending:
                    raise BackendError("more image placeholders than images")
                parts.append({"type": "image_url", "image_url": {"url": data_url(pending.pop(0))}})
            else:
                parts.append({"type": "text", "text": c["text"]})
        out.append({"role": m["role"], "content": parts})
    return out


class TransformersBackend:
    """In-process Qwen2.5-VL / Qwen3-VL through transformers (one machine, no server), with an
    optional LoRA adapter from ``restora train planner`` (see :mod:`restora.planners.hf`).

    ``constrained`` (:class:`~restora.planners.hf.HFBackend`'s): None (default) decodes under each
    question's JSON schema with xgrammar when it is installed, True requires it, False never. Every
    reply is still validated, and retries/fallback do the rest.
    """

    name = "transformers"

    def __init__(
        self, path: str, device: str = "cpu", max_tokens: int = DEFAULT_MAX_TOKENS, adapter: str | None = None, constrained: bool | None = None
    ) -> None:
        from restora.planners.hf import HFBackend

        self.path = str(path)
        self.adapter = adapter
        self.device = device
        self.max_tokens = max_tokens
        self._hf = HFBackend(path, adapter=adapter, device=device, max_tokens=max_tokens, constrained=constrained)

    def complete(self, messages: list[dict[str, Any]], images: list[np.ndarray], schema: dict[str, Any], schema_name: str) -> str:
        return self._hf.complete(messages, images, schema, schema_name)

    def last_decoding(self) -> dict[str, Any] | None:
        return self._hf.last_decoding()


class VLMPlanner:
    """Perceives with a VLM and asks it for the next step; validates, retries, falls back.

    Args:
        backend: where the model runs.
        max_retries: extra attempts per question after an invalid reply or a backend error.
        fallback: the planner used when no valid step comes (default: the heuristic planner).
        send_original: also show the original image once steps were kept (off by default: the
            synthesized training rows show the current image only).
    """

    name = "vlm"

    def __init__(self, backend: Backend, max_retries: int = 2, fallback: Any = None, send_original: bool = False) -> None:
        self.backend = backend
        self.max_retries = max(0, int(max_retries))
        if fallback is None:
            from restora.planners.heuristic import HeuristicPlanner

            fallback = HeuristicPlanner()
        self.fallback = fallback
        self.send_original = send_original
        self._perceived: dict[str, dict[str, Any]] = {}
        self._perceived_decoding: dict[str, dict[str, Any]] = {}
        self._perception_decoding: dict[str, Any] = {}
        self._asked: dict[str, Any] = {}  # how the last question's replies were decoded, and in how many attempts
        self.log: list[dict[str, Any]] = []  # every question, reply and problem (for traces and tests)

    def _decoding(self) -> dict[str, Any]:
        """How the backend decoded its last reply (``last_decoding()``), or just its name."""
        last = getattr(self.backend, "last_decoding", None)
        info = last() if callable(last) else None
        return dict(info) if info else {"backend": getattr(self.backend, "name", type(self.backend).__name__)}

    # -- the two questions --------------------------------------------------------------------
    def _ask(self, kind: str, messages: list[dict[str, Any]], images: list[np.ndarray], schema: dict[str, Any], parse) -> Any:
        problems = []
        convo = list(messages)
        for attempt in range(self.max_retries + 1):
            t0 = time.perf_counter()
            try:
                reply = self.backend.complete(convo, images, schema, f"restora_{kind}")
            except BackendError as e:
                problems.append(str(e))
                self._asked = {**self._decoding(), "attempts": attempt + 1}
                self.log.append({"question": kind, "attempt": attempt, "error": str(e), "seconds": time.perf_counter() - t0, "decoding": self._asked})
                continue
            self._asked = {**self._decoding(), "attempts": attempt + 1}
            try:
                value = parse(reply)
            except ActionError as e:
                problems.append(str(e))
                self.log.append(
                    {"question": kind, "attempt": attempt, "reply": reply[:500], "error": str(e), "seconds": time.perf_counter() - t0, "decoding": self._asked}
                )
                convo = [
                    *messages,
                    {"role": "assistant", "content": [{"type": "text", "text": reply[:2000]}]},
                    {"role": "user", "content": [{"type": "text", "text": f"That reply was invalid: {e}. Answer again with one JSON object in the schema."}]},
                ]
                continue
            self.log.append({"question": kind, "attempt": attempt, "reply": reply[:500], "seconds": time.perf_counter() - t0, "decoding": self._asked})
            return value
        raise ActionError("; ".join(problems[-3:]) or f"no valid {kind}")

    def perceive(self, obs: Observation) -> dict[str, Any]:
        """The VLM's perception of the current image (cached per image)."""
        from restora.store import image_hash

        if obs.image is None:
            raise ActionError("the observation carries no image")
        key = image_hash(obs.image)
        if key not in self._perceived:
            self._asked = {}
            try:
                self._perceived[key] = self._ask("perception", perception_messages(), [obs.image], perception_schema(), parse_perception)
            finally:
                self._perceived_decoding[key] = self._asked
        self._perception_decoding = self._perceived_decoding[key]
        return self._perceived[key]

    def next_action(self, obs: Observation) -> Action:
        catalogue = obs.catalogue
        self._asked = {}
        perceived = False
        try:
            perception = self.perceive(obs)
            perceived = True
            self._asked = {}
            messages, images = self._step_messages(obs, perception)
            action = self._ask("action", messages, images, action_schema(catalogue), lambda r: parse_action(r, catalogue))
        except ActionError as e:
            # when perception failed, no step was asked: its replies' decoding is the one there is
            decoding = {**self._asked, "perception": self._perception_decoding} if perceived else {"perception": self._asked}
            action = self.fallback.next_action(obs)
            return action.model_copy(update={"fallback": f"heuristic: the VLM gave no valid step ({str(e)[:300]})", "decoding": decoding})
        return action.model_copy(update={"perception": perception, "decoding": {**self._asked, "perception": self._perception_decoding}})

    def _step_messages(self, obs: Observation, perception: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
        """The same prompt ``restora synth`` trains on: system (catalogue) + image + state."""
        state = user_text(
            step=obs.step,
            steps_left=obs.steps_left,
            scores=obs.scores,
            history=[h.model_dump(mode="json") for h in obs.history],
            request=obs.request,
        )
        messages = chat_messages(system_prompt(obs.catalogue), state)
        images = [obs.image]
        if self.send_original and obs.original is not None and any(h.decision == "accept" for h in obs.history):
            user = messages[1]["content"]
            messages[1]["content"] = [{"type": "text", "text": "Original:"}, {"type": "image"}, {"type": "text", "text": "Current:"}, *user]
            images = [obs.original, obs.image]
        return messages, images
