"""The planner action schema generated from the tool registry, and reply validation."""

from __future__ import annotations

import json

import jsonschema
import pytest

from restora.planners import Action
from restora.planners.schema import (
    ActionError,
    action_json,
    action_schema,
    parse_action,
)
from restora.tools import list_tools


@pytest.fixture(scope="module")
def catalogue() -> dict:
    return {n: t.describe() for n, t in list_tools().items()}


@pytest.fixture(scope="module")
def validator(catalogue):
    schema = action_schema(catalogue)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_tool_default_and_suggestion_validates(catalogue, validator):
    for name, cls in list_tools().items():
        for params in [cls.Params(), *cls.suggest_params(0.6, {})]:
            action = Action(kind="tool", tool=name, task=str(cls.task), params=params.model_dump(mode="json"), reason="x")
            text = action_json(action)
            validator.validate(json.loads(text))
            assert parse_action(text, catalogue) == action
    for control in (Action.stop("done"), Action.rollback("worse")):
        validator.validate(json.loads(action_json(control)))
        assert parse_action(action_json(control), catalogue).kind == control.kind


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"kind": "jump"}', "kind must be"),
        ('{"kind": "tool", "tool": "denoise_nlmm", "params": {}}', "unknown or unavailable tool"),
        ('{"kind": "tool", "tool": "denoise_nlm", "params": {"sigma": 1000}}', "invalid params"),
        ('{"kind": "tool", "tool": "denoise_nlm", "params": {"colour": 1}}', "invalid params"),
        ('{"kind": "tool", "tool": "denoise_nlm", "task": "dehaze", "params": {}}', "does 'denoise'"),
        ('{"kind": "stop", "tool": "denoise_nlm"}', "unexpected fields"),
    ],
)
def test_garbage_replies_are_rejected_with_the_reason(catalogue, validator, reply, message):
    with pytest.raises(ActionError, match=message):
        parse_action(reply, catalogue)
    try:
        data = json.loads(reply)
    except json.JSONDecodeError:
        return
    assert not validator.is_valid(data)  # the schema and the parser agree


def test_the_schema_only_offers_tools_of_the_catalogue(catalogue):
    small = {n: catalogue[n] for n in ("denoise_nlm", "dehaze_dcp")}
    schema = action_schema(small)
    assert sorted(schema["$defs"]) == ["dehaze_dcp", "denoise_nlm"]
    v = jsonschema.Draft202012Validator(schema)
    assert not v.is_valid({"kind": "tool", "tool": "sr_srmd", "params": {}})
    with pytest.raises(ActionError):
        parse_action({"kind": "tool", "tool": "sr_srmd", "params": {}}, small)


def test_a_raw_control_character_in_the_reason_is_read_as_itself(catalogue):
    # vLLM's json_schema decoding let a small served model put a raw tab inside the reason string
    # (strict JSON forbids it); the action is unambiguous, so it is read, tab and all
    reply = '{"kind":"tool","tool":"denoise_nlm","task":"denoise","params":{"sigma":10.0},"reason":"noise\there"}'
    action = parse_action(reply, catalogue)
    assert (action.tool, action.params["sigma"], action.reason) == ("denoise_nlm", 10.0, "noise\there")
    with pytest.raises(ActionError, match="not valid JSON"):
        parse_action('{"kind":"tool","tool":"denoise_nlm","params":{}', catalogue)  # still cut off is still invalid
