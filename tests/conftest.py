"""Fixtures shared by every test folder."""

import pytest


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (tiny tensors gain nothing from more); the setting is restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fail_write(monkeypatch):
    """``fail_write(pattern, nth=1, code=errno.ENOSPC)``: from now on, the ``nth`` atomic write of a file whose name
    matches the glob ``pattern`` writes half its temporary file and then fails with ``OSError(code)``, as a full disk
    (ENOSPC) or a refused permission (EACCES) would; every other write goes through. ``fail_write(None)`` disarms.
    Returns the list of target paths whose write failed."""
    import errno
    import fnmatch
    import os

    import photossl.files as files

    original = files._write_temporary

    def arm(pattern, nth: int = 1, code: int = errno.ENOSPC) -> list:
        seen, failed = [], []

        def faulty(path, write, tmp):
            if pattern is None or not fnmatch.fnmatch(os.path.basename(path), pattern):
                return original(path, write, tmp)
            seen.append(path)
            if len(seen) != nth:
                return original(path, write, tmp)
            write(tmp)
            os.truncate(tmp, os.path.getsize(tmp) // 2)
            failed.append(path)
            raise OSError(code, os.strerror(code), tmp)

        monkeypatch.setattr(files, "_write_temporary", faulty)
        return failed

    return arm


@pytest.fixture
def one_line_error():
    """``one_line_error(result, *fragments, after_log=False)``: the CLI failed (``result.exception`` a SystemExit,
    exit code != 0) with exactly one non-empty output line, click's ``Error: ...`` (no traceback, no usage block),
    holding every fragment; returns that line. ``after_log=True`` accepts progress lines before it: the error is then
    the last line and the only one starting with ``Error``."""

    def check(result, *fragments, after_log: bool = False) -> str:
        assert result.exit_code != 0, result.output
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        lines = [line for line in result.output.splitlines() if line.strip()]
        if after_log:
            assert lines and [line for line in lines if line.startswith("Error")] == lines[-1:], result.output
            lines = lines[-1:]
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
        for fragment in fragments:
            assert fragment in lines[0], result.output
        return lines[0]

    return check


@pytest.fixture(scope="session")
def dask_cluster():
    """A local Dask cluster of two single-threaded worker processes, shared by every test that needs one (skipped
    where Dask is not installed). Tests that change its workers (plugins) undo it."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        yield cluster
