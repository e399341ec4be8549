import pytest

from cl_prompts.results import write_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_write_plots_writes_two_pngs(tmp_path):
    paths = write_plots([[90.0, None, None], [80.0, 70.0, None], [60.0, 75.0, 90.0]], tmp_path)
    assert [p.name for p in paths] == ["accuracy_matrix.png", "accuracy_over_time.png"]
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 2000


def test_single_experience_plots(tmp_path):
    for p in write_plots([[42.0]], tmp_path / "sub"):
        assert p.read_bytes()[:8] == PNG_MAGIC


def test_plots_name_the_experiences(tmp_path):
    from cl_prompts.results.plots import accuracy_matrix_axes, accuracy_over_time_axes

    matrix = [[90.0, None], [80.0, 70.0]]
    ax = accuracy_matrix_axes(matrix, labels=["banking", "travel"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["banking", "travel"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["banking", "travel"]
    lines = accuracy_over_time_axes(matrix, labels=["banking", "travel"])
    assert [t.get_text() for t in lines.get_legend().get_texts()] == ["banking", "travel", "average (seen)"]
    with pytest.raises(ValueError, match="labels must name each of the 2 experiences, got 1"):
        accuracy_matrix_axes(matrix, labels=["banking"])
    assert all(p.stat().st_size > 2000 for p in write_plots(matrix, tmp_path, labels=["a", "b"]))


def test_plot_helpers_draw_on_a_given_axes():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from cl_prompts.results.plots import accuracy_matrix_axes

    fig, (left, right) = plt.subplots(1, 2)
    assert accuracy_matrix_axes([[50.0]], ax=right) is right
    assert not left.images and right.images
    plt.close(fig)
