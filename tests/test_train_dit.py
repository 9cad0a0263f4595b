"""The DiT restorer's trainers on a tiny FLUX.1 Kontext pipeline (``restora zoo tiny``), on the CPU:
LoRA SFT lowers the flow-matching loss and raises the held-out PSNR of the pipeline's outputs,
resumes, mixes real pairs in progressively (stage sft); difficulty-adaptive RL raises the mean
reward on held-out hard samples; the cards they write are listed by ``restora zoo list`` and used
by ``restora run --allow dit_restore``.

The tiny pipeline's VAE has random weights and does not autoencode (a random decoder returns the
same ~11 dB noise whatever the latent), so no transformer could change the PSNR of its outputs;
the fixture first fits that VAE for 150 steps (``fit_vae_card``: a real, blurry autoencoder of
~19 dB), then trains the transformer's LoRA with the VAE frozen, as on a real checkpoint. Budgets
are tiny (64-px crops, one task, ~100 steps): the tests assert directions, measured, not numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from restora.cli import app
from restora.model_zoo.loaded import loaded_models

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"), pytest.mark.filterwarnings("ignore::UserWarning")]

BASE = "tiny-ae"


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from restora.model_zoo.tiny import write_tiny_zoo
    from restora.trainer.dit_common import fit_vae_card

    z = tmp_path_factory.mktemp("dit-zoo")
    write_tiny_zoo(z, seed=0)
    fit_vae_card(z, "tiny-flux-kontext", BASE, [data_dir / "clean" / "cbsd68"], steps=150, size=32)
    return z


def _sft_args(zoo: Path, out: Path, card: str, data_dir: Path, steps: int, *extra: str) -> list[str]:
    return [
        "train", "dit", "sft", "--zoo", str(zoo), "--base", BASE, "--out-card", card, "--clean", str(data_dir / "clean" / "cbsd68"),
        "--out", str(out), "--max-steps", str(steps), "--task", "denoise", "--size", "64", "--pool", "64", "--batch-size", "8",
        "--lr", "5e-3", "--rank", "16", "--val-samples", "8", "--device", "cpu", "-q", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def sft_run(zoo: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("sft") / "run"
    r = CliRunner().invoke(app, _sft_args(zoo, out, "tiny-restorer", data_dir, 100, "--eval-every", "50", "--checkpoint-every", "50"))
    assert r.exit_code == 0, r.output
    return {"out": out, "metrics": json.loads((out / "metrics.json").read_text()), "output": r.output}


def test_sft_lowers_the_loss_and_raises_held_out_psnr(sft_run: dict, zoo: Path):
    m, out = sft_run["metrics"], sft_run["out"]
    assert m["loss"]["last"] < 0.85 * m["loss"]["first"], m["loss"]
    before, after = m["val"]["before"], m["val"]["after"]
    assert after["psnr"] > before["psnr"], (before["psnr"], after["psnr"])
    assert [e["step"] for e in m["evals"]] == [0, 50, 100]
    for f in ("report.md", "curves.png", "samples.png", "evals/step_000000.png", "evals/step_000100.png", "adapter/pytorch_lora_weights.safetensors"):
        assert (out / f).is_file(), f
    assert "PSNR" in sft_run["output"]
    card = json.loads((zoo / "tiny-restorer" / "card.json").read_text())
    assert card["kind"] == "lora" and card["base"] == BASE and card["tasks"] == ["denoise"]


def test_the_card_is_listed_and_its_adapter_is_what_the_pipeline_loads(sft_run: dict, zoo: Path, monkeypatch: pytest.MonkeyPatch):
    import torch
    from diffusers import FluxKontextPipeline
    from safetensors.torch import load_file

    monkeypatch.setenv("RESTORA_ZOO", str(zoo))
    r = CliRunner().invoke(app, ["zoo", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in json.loads(r.output)}
    assert rows["tiny-restorer"]["kind"] == "lora"
    weights = zoo / "tiny-restorer" / "pytorch_lora_weights.safetensors"
    keys = set(load_file(str(weights)))
    assert keys and all(k.startswith("transformer.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    pipe = FluxKontextPipeline.from_pretrained(str(zoo / BASE))
    pipe.load_lora_weights(str(weights.parent), weight_name=weights.name, adapter_name="restorer")
    trained = load_file(str(sft_run["out"] / "checkpoint" / "adapter.safetensors"))
    loaded = {k: v for k, v in pipe.transformer.state_dict().items() if ".restorer." in k}
    assert len(loaded) == len(trained)
    for k, v in trained.items():  # the checkpoint's tensors, under the adapter's name
        name = k.replace(".lora_A.weight", ".lora_A.restorer.weight").replace(".lora_B.weight", ".lora_B.restorer.weight")
        assert torch.equal(loaded[name], v), k


def test_sft_resumes_from_its_checkpoint_and_refuses_other_settings(zoo: Path, data_dir: Path, tmp_path: Path):
    out = tmp_path / "run"
    r = CliRunner().invoke(app, _sft_args(zoo, out, "tiny-resume", data_dir, 6, "--eval-every", "100", "--checkpoint-every", "3"))
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, _sft_args(zoo, out, "tiny-resume", data_dir, 9, "--eval-every", "100", "--checkpoint-every", "3"))
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert m["resumed_from"] == 6 and [r["step"] for r in rows] == list(range(1, 10))
    r = CliRunner().invoke(app, _sft_args(zoo, out, "tiny-resume", data_dir, 12, "--eval-every", "100", "--rank", "8"))
    assert r.exit_code == 2 and "other settings" in r.output and "rank" in r.output


def test_stage_sft_mixes_real_pairs_in_progressively(sft_run: dict, zoo: Path, data_dir: Path, tmp_path: Path):
    out = tmp_path / "run"
    args = _sft_args(zoo, out, "tiny-restorer-real", data_dir, 12, "--eval-every", "100", "--stage", "sft", "--adapter", "tiny-restorer")
    args += ["--real", str(data_dir / "real_gt" / "cc_nam"), "--pool", "16"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    shares = [r["real_share"] for r in rows]
    assert shares[0] == pytest.approx(0.1) and shares == sorted(shares) and shares[-1] == pytest.approx(0.7)
    assert sum(r["real_in_batch"] for r in rows) > 0 and m["pairs"]["real_train"] > 0 and m["pairs"]["val_real"] >= 1
    assert rows[-1]["lr"] == pytest.approx(0.0, abs=1e-9) and rows[0]["lr"] > rows[6]["lr"]  # cosine to zero
    assert m["init_adapter"]["card"] == "tiny-restorer" and m["init_adapter"]["rank"] == 16


def test_configs_check_their_values():
    from restora.trainer.dit_rl import DiTRLConfig
    from restora.trainer.dit_sft import DiTSFTConfig

    with pytest.raises(ValueError, match="multiple of 16"):
        DiTSFTConfig(zoo=Path("z"), base="b", out_card="c", out=Path("o"), size=50)
    with pytest.raises(ValueError, match="unknown task"):
        DiTSFTConfig(zoo=Path("z"), base="b", out_card="c", out=Path("o"), tasks=["unblur"])
    with pytest.raises(ValueError, match="hard_fraction"):
        DiTRLConfig(zoo=Path("z"), base="b", adapter="a", out_card="c", out=Path("o"), hard_fraction=0.0)
    with pytest.raises(ValueError, match="piqee"):
        DiTRLConfig(zoo=Path("z"), base="b", adapter="a", out_card="c", out=Path("o"), nr_metrics=["piqee"])


@pytest.fixture(scope="module")
def rl_run(sft_run: dict, zoo: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("rl") / "run"
    args = [
        "train", "dit", "rl", "--zoo", str(zoo), "--base", BASE, "--adapter", "tiny-restorer", "--out-card", "tiny-restorer-rl",
        "--clean", str(data_dir / "clean" / "cbsd68"), "--out", str(out), "--max-steps", "30", "--size", "64", "--pool", "40",
        "--val-pool", "20", "--lr", "2e-3", "--eval-every", "10", "--checkpoint-every", "10", "--device", "cpu", "-q",
    ]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return {"out": out, "metrics": json.loads((out / "metrics.json").read_text())}


@pytest.mark.slow
def test_rl_on_the_hardest_samples_raises_held_out_reward(rl_run: dict, zoo: Path):
    m, out = rl_run["metrics"], rl_run["out"]
    hard = m["hard"]
    assert hard["train"] == 12 and hard["val"] == 6  # 30% of 40 and of 20
    assert hard["train_rmse"]["hard"] > hard["train_rmse"]["all"] and hard["val_rmse"]["hard"] > hard["val_rmse"]["all"]
    before, after = m["held_out"]["before"], m["held_out"]["after"]
    assert after["reward"] > before["reward"], (before, after)
    assert {"nr", "fidelity", "nr_brisque", "nr_piqe", "psnr"} <= set(after) and m["unrewarded"][0] == "psnr"
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and all(0.0 < r["w_mean"] <= 1.0 for r in rows) and any(r["group_reward_std"] > 0 for r in rows)
    assert m["rank"] == {"sft": 16, "rl": 4, "card": 20}
    card = json.loads((zoo / "tiny-restorer-rl" / "card.json").read_text())
    assert card["base"] == BASE and card["tasks"] == ["denoise"] and card["source"] == "restora train dit rl"
    for f in ("report.md", "curves.png", "samples.png", "hard.json"):
        assert (out / f).is_file(), f


@pytest.mark.slow
def test_restora_run_uses_the_trained_card(rl_run: dict, zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_photo: np.ndarray):
    from restora.degrade import apply as degrade
    from restora.imageio import save_image
    from restora.model_zoo import clear_cache

    own = tmp_path / "zoo"  # the base and the RL card alone: the card is self-contained
    for card in (BASE, "tiny-restorer-rl"):
        shutil.copytree(zoo / card, own / card)
    monkeypatch.setenv("RESTORA_ZOO", str(own))
    monkeypatch.setenv("RESTORA_DIT", BASE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RESTORA_DEVICE", raising=False)
    src = tmp_path / "noisy.png"
    save_image(src, degrade(clean_photo[:64, :64], "noise", severity=0.7, seed=0))
    try:
        r = CliRunner().invoke(app, ["run", str(src), "--allow", "dit_restore", "--out", str(tmp_path / "out"), "-q"])
        assert r.exit_code == 0, r.output
        records = [json.loads(line) for line in (tmp_path / "out" / "noisy.trace.jsonl").read_text().splitlines()]
        steps = [x for x in records if x["event"] == "step" and x["action"]["kind"] == "tool"]
        assert steps and steps[0]["action"]["tool"] == "dit_restore" and steps[0]["action"]["task"] == "denoise"
        info = steps[0]["tool_info"]
        assert info["card"] == BASE and info["lora"] == "tiny_restorer_rl"
    finally:
        loaded_models().clear()
        clear_cache()


def test_micro_batches_accumulate_the_same_gradient():
    """GPU memory plan: micro-batches (gradient accumulation) must give the full batch's gradient,
    for the flow-matching backward and for the NFT blend (with its no-grad v_old / v_sft passes)."""
    import torch
    from accelerate import Accelerator

    from restora.model_zoo.tiny.dit import flux_kontext_pipeline
    from restora.trainer.dit_common import KontextFlow, add_lora
    from restora.trainer.dit_rl import activate, nft_backward
    from restora.trainer.dit_sft import flow_matching_backward

    pipe = flux_kontext_pipeline(0, "tiny")
    tr = pipe.transformer.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        add_lora(tr, 4, 4.0, ("attn.to_q", "attn.to_v", "proj_out"), "sft")
        add_lora(tr, 2, 2.0, ("attn.to_q", "attn.to_v", "proj_out"), "rl")
        for name, p in tr.named_parameters():  # non-zero B, so every term has a gradient
            if ".lora_B." in name:
                p.data.normal_(0, 0.1)
    activate(tr, ["sft", "rl"], "rl")
    acc = Accelerator(cpu=True)
    flow = KontextFlow(pipe, 32, 2.5, "cpu", torch.float32)
    g = torch.Generator().manual_seed(1)
    n, L = 6, flow.tokens
    x0, xc, cond, eps = (torch.randn(n, L, 64, generator=g) for _ in range(4))
    sigma = flow.sigmas(n, g, "logit_normal")
    emb, pooled = torch.randn(n, 5, 32, generator=g), torch.randn(n, 32, generator=g)
    text_ids = torch.zeros(5, 3)
    p, w = torch.rand(n, generator=g), torch.rand(n, generator=g)

    def grads(fn) -> list:
        for q in tr.parameters():
            q.grad = None
        fn()
        return [q.grad.clone() for q in tr.parameters() if q.requires_grad]

    full = grads(lambda: flow_matching_backward(flow, tr, acc, x0, cond, sigma, eps - x0, emb, pooled, text_ids, None))
    parts = grads(lambda: flow_matching_backward(flow, tr, acc, x0, cond, sigma, eps - x0, emb, pooled, text_ids, 4))
    assert full and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(full, parts, strict=True))
    kw = {"beta": 1.0, "kl_weight": 0.1}
    full = grads(lambda: nft_backward(flow, tr, tr, acc, x0, xc, cond, eps, sigma, p, w, emb, pooled, text_ids, **kw))
    parts = grads(lambda: nft_backward(flow, tr, tr, acc, x0, xc, cond, eps, sigma, p, w, emb, pooled, text_ids, micro_batch=2, **kw))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(full, parts, strict=True))
    assert any(float(a.abs().sum()) > 0 for a in full)
