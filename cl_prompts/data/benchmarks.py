"""The dataset a benchmark name stands for (``clinc150``, ``file:PATH``, ``split_cifar100``,
``imagenet_r``, ``folder:PATH``), loaded and grouped into experiences as a run asks."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class BenchmarkOptions(Protocol):
    """The options :func:`load_benchmark` reads; a :class:`~cl_prompts.run.RunConfig` has them all."""

    benchmark: str  # one of cl_prompts.choices.BENCHMARK_FORMS
    data_root: str | None
    experiences: int | None
    class_order_seed: int | None
    class_order: str | None  # None, "file" or "sorted"
    eval_split: str  # "test" or "val"
    val_fraction: float
    test_file: str | None
    text_column: str
    label_column: str

    @property
    def is_image(self) -> bool: ...


def load_benchmark(options: BenchmarkOptions, image_preprocessing: tuple[int, tuple, tuple] | None = None):
    """The dataset named by ``options.benchmark``: a :class:`~cl_prompts.data.TextDataset`, or an
    :class:`~cl_prompts.data.images.ImageDataset`; in the class order and number of experiences
    ``options`` asks for.

    image_preprocessing: (image size, mean, std) of the vision backbone the images are for
    (:func:`cl_prompts.backbones.loading.image_preprocessing`); None: ViT's 224 px and 0.5.
    """
    if options.is_image:
        return _load_images(options, image_preprocessing)
    dataset = _load_text(options)
    if options.class_order is None:
        return dataset
    if options.class_order == "sorted":
        order = sorted(range(dataset.num_classes), key=lambda c: dataset.class_names[c])
    else:  # "file": CLINC150's own order is its file's (domains.json)
        order = dataset.info.get("file_order") or dataset.class_order()
    return dataset.regroup(options.experiences, order=order)


def _load_images(options: BenchmarkOptions, preprocessing: tuple[int, tuple, tuple] | None):
    from cl_prompts.data.images import load_image_benchmark

    size = {} if preprocessing is None else dict(zip(("image_size", "mean", "std"), preprocessing, strict=True))
    dataset = load_image_benchmark(options.benchmark, options.data_root, **size,
                                   num_experiences=options.experiences or 10,
                                   class_order_seed=options.class_order_seed)
    if options.class_order == "sorted":
        return dataset.regroup(order=sorted(range(dataset.num_classes), key=lambda c: dataset.class_names[c]))
    return dataset  # "file": the folders' (sorted) order, the default


def _load_text(options: BenchmarkOptions):
    from cl_prompts.data.clinc150 import load_clinc150
    from cl_prompts.data.text_file import load_text_file

    if options.benchmark == "clinc150":
        root = None if options.data_root is None else Path(options.data_root) / "clinc150"
        return load_clinc150(root, num_experiences=options.experiences, class_order_seed=options.class_order_seed,
                             eval_split=options.eval_split)
    path = Path(options.benchmark[len("file:"):])
    test_file = options.test_file if options.eval_split == "test" else None  # validation never reads it
    for flag, p in (("--benchmark file:", path), ("--test-file", test_file)):
        if p is None:
            continue
        if not Path(p).exists():
            raise FileNotFoundError(f"{flag} data file not found: {p}")
        if Path(p).is_dir():
            raise IsADirectoryError(f"{flag} must name a file, got the directory {p}")
    return load_text_file(
        path, options.text_column, options.label_column, test_path=options.test_file,
        num_experiences=options.experiences, class_order_seed=options.class_order_seed,
        eval_split=options.eval_split, val_fraction=options.val_fraction,
    )
