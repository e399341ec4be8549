"""The choices a run accepts, importable without torch (the CLI's and RunConfig's checks).

Benchmarks: the one list of ``--benchmark`` forms; ``cl-prompts run --help`` is written from
:data:`BENCHMARK_FORMS`.

Precisions: fp32: exact. bf16 / fp16: autocast around the frozen encoder only (prompts, keys,
heads and closed-form statistics stay fp32). auto: bf16 where the device computes it
natively, else fp32 (:func:`cl_prompts.backbones.precision.resolve_precision`).
"""

PRECISIONS = ("fp32", "bf16", "fp16", "auto")

#: ``BackboneConfig.pooling``: "auto" is the model's own (a causal LM's "text"); "mean" and
#: "cls" for encoders; "text" (the input's tokens without the template's head), "mean" and
#: "last" for causal LMs.
POOLINGS = ("auto", "mean", "cls", "text", "last")
ENCODER_POOLINGS = ("mean", "cls")
CAUSAL_POOLINGS = ("text", "mean", "last")

TEXT_BENCHMARKS = ("clinc150",)  # besides "file:PATH"
IMAGE_BENCHMARKS = ("split_cifar100", "imagenet_r")  # besides "folder:PATH"
TEXT_FILE_PREFIX = "file:"
IMAGE_FOLDER_PREFIX = "folder:"

#: Every accepted benchmark form and what it names.
BENCHMARK_FORMS = {
    "clinc150": "CLINC150, 150 intents in 10 experiences (text, the default)",
    f"{TEXT_FILE_PREFIX}PATH": "a .csv/.tsv/.json/.jsonl file of text,label rows, e.g. "
                               "file:DATA/hwu64/train.csv --test-file DATA/hwu64/test.csv (HWU64)",
    "split_cifar100": "CIFAR-100 in 10 experiences (images)",
    "imagenet_r": "ImageNet-R, the imagenet-r/ folder under --data-root (images)",
    f"{IMAGE_FOLDER_PREFIX}PATH": "a folder with one sub-folder of images per class",
}


def is_text_benchmark(spec: object) -> bool:
    """``clinc150`` or ``file:PATH``."""
    return isinstance(spec, str) and (spec in TEXT_BENCHMARKS or spec.startswith(TEXT_FILE_PREFIX))


def is_image_benchmark(spec: object) -> bool:
    """``split_cifar100``, ``imagenet_r`` or ``folder:PATH``."""
    return isinstance(spec, str) and (spec in IMAGE_BENCHMARKS or spec.startswith(IMAGE_FOLDER_PREFIX))


def is_benchmark(spec: object) -> bool:
    """One of the :data:`BENCHMARK_FORMS` (a PATH is not checked here)."""
    return is_text_benchmark(spec) or is_image_benchmark(spec)


def benchmark_help() -> str:
    """The forms of :data:`BENCHMARK_FORMS` as one help text (``--help`` lists them all)."""
    return "; ".join(f"{form}: {meaning}" for form, meaning in BENCHMARK_FORMS.items())
