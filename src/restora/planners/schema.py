"""The planner's action as JSON: a schema generated from the tool registry, and its validation.

One JSON object per step, one of:

* ``{"kind": "tool", "tool": NAME, "task": TASK, "params": {...}, "reason": "..."}`` with
  ``params`` in that tool's own ``Params`` schema (unknown fields are an error);
* ``{"kind": "rollback", "reason": "..."}``: undo the last kept step (it made things worse);
* ``{"kind": "stop", "reason": "..."}``: the image is done.

The same schema is what a VLM planner is asked to answer in (``response_format`` json_schema)
and what synthesized training rows are checked against, so the two cannot drift apart.

Examples:
    >>> from restora.tools import list_tools
    >>> catalogue = {n: t.describe() for n, t in list_tools().items()}
    >>> schema = action_schema(catalogue)
    >>> sorted(schema["$defs"])[:2]
    ['deblur_defocus', 'deblur_motion']
    >>> parse_action('{"kind": "tool", "tool": "denoise_nlm", "params": {"sigma": 9}}', catalogue).params["sigma"]
    9.0
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from restora.errors import RestoraError
from restora.planners.base import Action

REASON = {"type": "string", "maxLength": 160}
"""A short reason: capped so that a model cannot ramble until the reply is cut off."""


class ActionError(RestoraError, ValueError):
    """A planner reply that is not a valid action (the message says what is wrong)."""


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The params schema with its local ``$defs`` inlined (one self-contained object)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(copy.deepcopy(defs[ref.split("/")[-1]]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def action_schema(catalogue: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """JSON schema (draft 2020-12) of one planner action over the tools of ``catalogue``.

    ``catalogue`` maps tool names to :meth:`restora.tools.base.Tool.describe` dicts.
    """
    defs: dict[str, Any] = {}
    for name in sorted(catalogue):
        desc = catalogue[name]
        params = _inline_refs(copy.deepcopy(dict(desc["params"])))
        params.pop("title", None)
        defs[name] = {
            "type": "object",
            "description": desc.get("summary", ""),
            "properties": {
                "kind": {"const": "tool"},
                "tool": {"const": name},
                "task": _task_schema(desc),
                "params": params,
                "reason": REASON,
            },
            "required": ["kind", "tool", "params"],
            "additionalProperties": False,
        }
    control = {
        kind: {
            "type": "object",
            "properties": {"kind": {"const": kind}, "reason": REASON},
            "required": ["kind"],
            "additionalProperties": False,
        }
        for kind in ("stop", "rollback")
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "restora planner action",
        "oneOf": [{"$ref": f"#/$defs/{n}"} for n in defs] + [control["rollback"], control["stop"]],
        "$defs": defs,
    }


def _task_schema(desc: Mapping[str, Any]) -> dict[str, Any]:
    tasks = [str(t) for t in (desc.get("tasks") or [desc["task"]])]
    return {"const": tasks[0]} if len(tasks) == 1 else {"enum": tasks}


def action_json(action: Action) -> str:
    """The action as the compact JSON a planner answers with (no planner-internal fields)."""
    if action.kind in ("stop", "rollback"):
        body: dict[str, Any] = {"kind": action.kind}
    else:
        body = {"kind": "tool", "tool": action.tool, "task": action.task, "params": action.params}
    if action.reason:
        body["reason"] = action.reason
    return json.dumps(body, separators=(",", ":"))


def read_reply(reply: str) -> Any:
    r"""A model's JSON reply, decoded; :class:`ActionError` when it is not JSON.

    A raw tab or newline inside a string (a free-text reason) is read as the character it is
    (``strict=False``): vLLM's json_schema decoding lets a small model emit them, and they change
    nothing the agent acts on.

    Examples:
        >>> read_reply('{"reason": "a\tb"}')["reason"]
        'a\tb'
        >>> read_reply('{"kind": ')
        Traceback (most recent call last):
        ...
        restora.planners.schema.ActionError: not valid JSON: Expecting value at char 9
    """
    try:
        return json.loads(reply, strict=False)
    except json.JSONDecodeError as e:
        raise ActionError(f"not valid JSON: {e.msg} at char {e.pos}") from None


def parse_action(reply: str | Mapping[str, Any], catalogue: Mapping[str, Mapping[str, Any]]) -> Action:
    """Validate a planner reply (JSON text or a parsed object) against the registry; raise
    :class:`ActionError` saying what is wrong. Params are checked by the tool's own model and
    completed with its defaults."""
    from restora.tools.registry import get_tool

    data = read_reply(reply) if isinstance(reply, str) else dict(reply)
    if not isinstance(data, dict):
        raise ActionError(f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    if kind in ("stop", "rollback"):
        extra = set(data) - {"kind", "reason"}
        if extra:
            raise ActionError(f"{kind}: unexpected fields {sorted(extra)}")
        return Action(kind=kind, reason=str(data.get("reason", "")))
    if kind != "tool":
        raise ActionError(f"kind must be 'tool', 'rollback' or 'stop', got {kind!r}")
    extra = set(data) - {"kind", "tool", "task", "params", "reason"}
    if extra:
        raise ActionError(f"tool step: unexpected fields {sorted(extra)}")
    tool = data.get("tool")
    if tool not in catalogue:
        raise ActionError(f"unknown or unavailable tool {tool!r} (available: {', '.join(sorted(catalogue))})")
    tasks = [str(t) for t in (catalogue[tool].get("tasks") or [catalogue[tool]["task"]])]
    task = data.get("task")
    if task is not None and task not in tasks:
        raise ActionError(f"tool {tool!r} does {' or '.join(repr(t) for t in tasks)}, not {task!r}")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ActionError(f"params must be an object, got {type(params).__name__}")
    if len(tasks) > 1:  # a multi-task tool takes the task as a param too; the two must agree
        if task is not None and params.get("task", task) != task:
            raise ActionError(f"tool {tool!r}: task {task!r} but params.task {params['task']!r}")
        if task is not None:
            params = {**params, "task": task}
        task = params.get("task", tasks[0])
    else:
        task = tasks[0]
    cls = get_tool(tool)
    try:
        parsed = cls.Params.model_validate(params)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'params'}: {x['msg']}" for x in e.errors())
        raise ActionError(f"{tool}: invalid params: {problems}") from None
    dumped = parsed.model_dump(mode="json")
    task = str(dumped.get("task", task))
    return Action(kind="tool", tool=tool, task=task, params=dumped, reason=str(data.get("reason", "")))
