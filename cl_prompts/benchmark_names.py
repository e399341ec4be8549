"""Names of the benchmarks the runner knows (no torch import: the run configuration checks them)."""

IMAGE_BENCHMARKS = ("split_cifar100", "imagenet_r")  # besides "folder:PATH"


def is_image_benchmark(spec: object) -> bool:
    """``split_cifar100``, ``imagenet_r`` or ``folder:PATH``."""
    return isinstance(spec, str) and (spec in IMAGE_BENCHMARKS or spec.startswith("folder:"))
