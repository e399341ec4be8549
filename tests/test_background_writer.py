import threading

import pytest

from cl_prompts.run.background import BackgroundWriter


def test_writes_run_one_at_a_time_in_order():
    order, gate = [], threading.Event()
    writer = BackgroundWriter()
    writer.submit(lambda: (gate.wait(5), order.append(1)))
    assert writer.busy
    gate.set()
    writer.submit(lambda: order.append(2))  # waits for the first write
    writer.wait()
    assert order == [1, 2] and not writer.busy


def test_a_failed_write_is_raised_by_the_next_submit_and_only_once():
    writer = BackgroundWriter()
    writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    ran = []
    with pytest.raises(OSError, match="disk full"):
        writer.submit(lambda: ran.append(1))
    assert ran == []  # nothing after a failed write starts
    writer.wait()  # the error was handed over once


def test_close_finishes_the_write_and_warns_about_its_error():
    done = []
    writer = BackgroundWriter()
    writer.submit(lambda: done.append(1))
    writer.close()
    assert done == [1]
    writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.warns(RuntimeWarning, match="disk full"):
        writer.close()
    writer.wait()
