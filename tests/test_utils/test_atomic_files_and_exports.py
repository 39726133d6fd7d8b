"""The atomic-write helper, the shared mismatch report and the lazy package exports."""

import os
import subprocess
import sys

import pytest
import torch

from rsretrieval.lazy_exports import lazy_exports
from rsretrieval.utils.atomic_files import atomic_write, atomic_write_with, remove_stale_temporaries, temporary_path
from rsretrieval.utils.state_mismatch import StateMismatch, mismatch_report


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / 'sub' / 'meta.json'
    atomic_write(target, 'first')
    atomic_write(target, b'second')
    assert target.read_text() == 'second' and os.listdir(target.parent) == ['meta.json']


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / 'shard.npy'
    target.write_bytes(b'old')

    def broken(f):
        f.write(b'half')
        raise ValueError('not an array')

    with pytest.raises(ValueError, match='not an array'):
        atomic_write_with(target, broken)
    assert target.read_bytes() == b'old' and os.listdir(tmp_path) == ['shard.npy']


def test_only_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    stale = tmp_path / f'.epoch_1.pth.tmp-{dead.stdout.strip()}-0a1b2c3d'
    legacy = tmp_path / f'.epoch_2.pth.tmp-{dead.stdout.strip()}'  # the name without a random part
    live = temporary_path(tmp_path / 'epoch_3.pth')
    for path in (stale, legacy, live):
        path.write_bytes(b'partial')
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([str(stale), str(legacy)])
    assert [p.name for p in tmp_path.iterdir()] == [live.name]


def test_the_mismatch_report_names_counts_and_first_keys():
    own = {'a.b.c.d': torch.zeros(2), 'x': torch.zeros(3), 'y': torch.zeros(1)}
    state = {'x': torch.zeros(4), 'y': torch.zeros(1), 'extra': torch.zeros(1)}
    mismatch = StateMismatch.between(own, state)
    assert mismatch and not StateMismatch.between(own, own)
    assert mismatch_report('f.pth', 'Net', 'holds 3 tensors', mismatch) == (
        "f.pth does not fit Net: the checkpoint holds 3 tensors; 1 of the model's 3 tensors missing (a.b.c...); "
        '1 unexpected (extra); 1 of another shape (x)'
    )


def test_lazy_exports_load_on_first_use_and_refuse_a_name_exported_twice():
    names, getattr_ = lazy_exports('rsretrieval.utils', {'checkpoint_errors': ('CheckpointError',)})
    assert names == ['CheckpointError'] and getattr_('CheckpointError').__name__ == 'CheckpointError'
    with pytest.raises(AttributeError, match='has no attribute'):
        getattr_('atomic_write')
    with pytest.raises(ValueError, match="'X' is exported by both"):
        lazy_exports('pkg', {'a': ('X',), 'b': ('X',)})
