"""py-spy over running processes while a benchmark's block runs (``--profile``)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def py_spy(processes: Mapping[str, int], directory: Path | None, label: str) -> Iterator[None]:
    """With a ``directory``: sample each process (name -> pid) while the body
    runs, and write its raw folded stacks (``<label>.<name>.txt``) and a summary
    of where its time went (``<label>.<name>.summary``). Without: nothing."""
    if directory is None:
        yield
        return
    name = re.sub(r"\W+", "-", label).strip("-")
    record = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "-f", "raw"]
    raw = {process: directory / f"{name}.{process}.txt" for process in processes}
    spies = {
        process: subprocess.Popen(
            [*record, "-p", str(pid), "-o", str(raw[process])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for process, pid in processes.items()
    }
    try:
        yield
    finally:
        for spy in spies.values():
            spy.send_signal(signal.SIGINT)  # (py-spy writes its file on an interrupt)
        for process, spy in spies.items():
            spy.wait(30)
            if raw[process].exists():
                (directory / f"{name}.{process}.summary").write_text(summarise(raw[process]))


def summarise(raw: Path, top: int = 40) -> str:
    """Our own frames (and SQL execution) by share of the samples they appear in."""
    total, seen_in = 0, Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in set(stack.split(";")):
            if "site-packages" not in frame or "do_execute" in frame:
                seen_in[frame] += int(count)
    return (
        "".join(f"{n / total:6.1%}  {frame}\n" for frame, n in seen_in.most_common(top))
        if total
        else "no samples\n"
    )
