"""Class-incremental data: CLINC150-10, your own text files, a synthetic toy stream, and
:func:`load_benchmark` for any benchmark name a run accepts.

Only numpy, torch and the standard library are used here (no avalanche, no transformers).
"""

from cl_prompts.data.benchmarks import BenchmarkOptions, load_benchmark
from cl_prompts.data.clinc150 import (
    ENV_VAR,
    candidate_roots,
    find_clinc150,
    find_data_folder,
    load_clinc150,
    load_clinc150_out_of_scope,
)
from cl_prompts.data.synthetic import synthetic_text_dataset
from cl_prompts.data.tensors import TextInputs, TokenizedTextDataset
from cl_prompts.data.text_file import load_text_file, read_rows, write_text_csv
from cl_prompts.data.types import (
    TextDataset,
    TextSplit,
    class_order,
    split_classes,
    validate_experiences,
)

__all__ = [
    "BenchmarkOptions",
    "ENV_VAR",
    "TextDataset",
    "TextInputs",
    "TextSplit",
    "TokenizedTextDataset",
    "candidate_roots",
    "class_order",
    "find_clinc150",
    "find_data_folder",
    "load_benchmark",
    "load_clinc150",
    "load_clinc150_out_of_scope",
    "load_text_file",
    "read_rows",
    "split_classes",
    "synthetic_text_dataset",
    "validate_experiences",
    "write_text_csv",
]
