"""Tasks on a Dask cluster: ``photossl generate --scheduler`` and ``photossl study --scheduler`` hand their chunks,
pretraining runs and fine-tuning cells to the workers of a Dask scheduler instead of the local process pool.

Dask is optional (``pip install 'photossl[dask]'``); photossl imports it only when an address is given. Every
worker must run the same photossl environment and see the output folder under the same path (a shared file system):
each task writes its own files atomically, and the submitting process reads them back.

Each task is submitted with ``pure=False`` and a key made of what it computes and the folder it writes
(:func:`task_key`), so that submitting the same cell again while it is known to the scheduler joins the first
submission instead of running it twice. A task whose worker dies is rerun by Dask on another worker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

from photossl.errors import PhotosslError

_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
CONNECT_TIMEOUT_S = 30


def check_address(address: str, name: str = "--scheduler") -> str:
    """``address`` ('tcp://HOST:PORT', as a Dask scheduler prints it) stripped; a PhotosslError if it is not one."""
    text = str(address).strip()
    if not _ADDRESS.match(text):
        raise PhotosslError(f"{name} must be a Dask scheduler address such as tcp://HOST:8786, got '{address}'")
    return text


def task_key(kind: str, name: str, scope: str) -> str:
    """The Dask key of task ``name`` (a chunk or cell id) of ``kind`` writing into ``scope`` (its folder):
    readable on the dashboard, and the same for every submission of the same task."""
    digest = hashlib.sha256(str(scope).encode()).hexdigest()[:12]
    return f"photossl-{kind}-{name}-{digest}"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise PhotosslError("a Dask scheduler needs Dask: pip install 'photossl[dask]' (dask[distributed])") from None
    return distributed


@contextmanager
def connect(address: str) -> Iterator:
    """A ``dask.distributed.Client`` of the scheduler at ``address``, closed on exit (its unfinished tasks are then
    forgotten by the scheduler). Inside a task already running on a worker (a study's cheap-label run generating its
    rough labels), the worker's own scheduler is used, without holding the worker's thread while waiting."""
    distributed = _distributed()
    address = check_address(address)
    try:
        distributed.get_worker()
        inside_worker = True
    except ValueError:
        inside_worker = False
    if inside_worker:
        with distributed.worker_client() as client:
            yield client
        return
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise PhotosslError(f"cannot reach the Dask scheduler at {address}: {err}") from None
    try:
        yield client
    finally:
        client.close()


def as_completed(client, futures: list) -> Iterator:
    """``futures`` of ``client`` in the order they finish (done, erred or cancelled)."""
    return _distributed().as_completed(futures, loop=client.loop)


def killed_worker(err: BaseException) -> bool:
    """Whether ``err`` says that Dask gave up on a task because its workers kept dying."""
    return type(err).__name__ == "KilledWorker"
