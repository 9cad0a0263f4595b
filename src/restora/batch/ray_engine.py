"""placeholder"""
from restora.errors import RestoraError


def check_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise RestoraError("--engine ray needs Ray: pip install 'restora[ray]'") from None
