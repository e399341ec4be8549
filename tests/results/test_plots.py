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
