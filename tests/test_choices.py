"""The one list of benchmark forms agrees with what RunConfig accepts."""

import pytest

from cl_prompts.choices import (
    BENCHMARK_FORMS,
    benchmark_help,
    is_benchmark,
    is_image_benchmark,
)
from cl_prompts.run.config import RunConfig


@pytest.mark.parametrize("form", list(BENCHMARK_FORMS))
def test_every_listed_form_is_accepted_by_the_run_configuration(form, tmp_path):
    spec = form.replace("PATH", str(tmp_path / "data.csv"))
    assert is_benchmark(spec)
    config = RunConfig(benchmark=spec)
    assert config.is_image == is_image_benchmark(spec)
    assert f"{form}: {BENCHMARK_FORMS[form]}" in benchmark_help()


@pytest.mark.parametrize("spec", ["hwu64", "cifar100", "file", "FILE:x.csv", "", None])
def test_other_names_are_refused_by_both(spec):
    assert not is_benchmark(spec)
    with pytest.raises(ValueError, match="benchmark must be"):
        RunConfig(benchmark=spec)
