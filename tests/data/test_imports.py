import subprocess
import sys


def test_data_imports_neither_avalanche_nor_transformers():
    code = "import sys, cl_prompts.data; print([m for m in ('avalanche', 'transformers') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
