"""Keeping freed CPU memory: the next large tensor reuses pages instead of faulting new ones in."""

import subprocess
import sys

import pytest

from rsretrieval.utils import cpu_memory

# Each run is its own process: the setting is process-wide.
_PROGRAM = """
import resource, sys, torch
from rsretrieval.utils.cpu_memory import keep_freed_cpu_memory
print(keep_freed_cpu_memory() if sys.argv[1] == 'keep' else False)
def faults_of_one_batch():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(64 * 2**20, dtype=torch.uint8).fill_(1)  # 64 MiB: above glibc's mmap threshold
    y = torch.empty(3 * 2**20, dtype=torch.uint8).fill_(1)
    del x, y
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
# the heap grows while freed blocks are split by small allocations, then stops growing
faults = [faults_of_one_batch() for _ in range(12)]
print(sum(faults[-4:]))
"""


def _faults(mode: str) -> tuple[str, int]:
    run = subprocess.run([sys.executable, '-c', _PROGRAM, mode], capture_output=True, text=True, check=True)
    out = run.stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(cpu_memory.platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    applied, kept = _faults('keep')
    _, default = _faults('default')
    assert applied == 'True'
    pages = 64 * 2**20 // 4096
    assert default > 4 * pages * 0.9, 'glibc maps a 64 MiB block afresh for every batch'
    assert kept < pages // 10


def test_environment_turns_it_off_and_other_values_are_refused(monkeypatch):
    monkeypatch.setenv(cpu_memory.KEEP_FREED_MEMORY_ENV, '0')
    assert cpu_memory.keep_freed_cpu_memory() is False
    monkeypatch.setenv(cpu_memory.KEEP_FREED_MEMORY_ENV, 'yes')
    with pytest.raises(ValueError, match='RSRETRIEVAL_KEEP_FREED_MEMORY must be 0 or 1'):
        cpu_memory.keep_freed_cpu_memory()
