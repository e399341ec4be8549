"""Several ``cl-prompts`` commands in one process, one after the other (tests/test_distributed.py:
one ``torchrun`` launch, with its process starts and imports, for several runs).

    python tests/cli_sequence.py ARGS... --then ARGS... --then ARGS...

Exits with the first non-zero status of ``cl_prompts.cli.main``.
"""

import sys

from cl_prompts.cli import main

SEPARATOR = "--then"


def commands(argv: list[str]) -> list[list[str]]:
    """``argv`` split at each ``--then``."""
    found: list[list[str]] = [[]]
    for arg in argv:
        if arg == SEPARATOR:
            found.append([])
        else:
            found[-1].append(arg)
    return found


if __name__ == "__main__":
    for command in commands(sys.argv[1:]):
        status = main(command)
        if status:
            sys.exit(status)
