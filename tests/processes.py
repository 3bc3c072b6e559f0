"""Separate processes a test starts (web servers, workers, the scheduler), each in its own
process group with its log under the test's folder, stopped together at the end."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(kw_only=True)
class Processes:
    """The processes started so far, by name, and the folder their logs go to."""

    tmp: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def launch(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start `command` from the repository as `name`, its output in <tmp>/<name>.log."""
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        self.processes[name] = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self.processes[name]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        """SIGTERM to each process group, SIGKILL to any still running 15 s later."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
