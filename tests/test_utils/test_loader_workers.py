"""Loader workers are lowered to the CPUs a process may use, and the change is said once."""

import os
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from rsretrieval.utils.loader_workers import limit_loader_workers, local_processes, usable_cpus


def _cfg(train=4, val=4, test=0):
    return Config(
        dict(
            train_dataloader=dict(batch_size=2, num_workers=train, persistent_workers=True),
            val_dataloader=dict(batch_size=2, num_workers=val),
            test_dataloader=dict(batch_size=2, num_workers=test),
        )
    )


@pytest.fixture
def lines(monkeypatch):
    seen = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'info', seen.append)
    return seen


def test_workers_are_lowered_to_the_cpus_and_said_in_one_line(lines):
    cfg = limit_loader_workers(_cfg(), cpus=2, processes=1, announce=True)
    assert [cfg[f'{n}_dataloader']['num_workers'] for n in ('train', 'val', 'test')] == [2, 2, 0]
    assert lines == ['num_workers 4 -> 2 (train, val): this process may use 2 CPUs']


def test_local_processes_share_the_cpus(lines):
    cfg = limit_loader_workers(_cfg(train=4, val=3), cpus=8, processes=4, announce=True)
    assert cfg.train_dataloader.num_workers == 2 and cfg.val_dataloader.num_workers == 2
    assert lines == ['num_workers 3/4 -> 2 (train, val): 8 CPUs for 4 processes on this machine']


def test_at_least_one_worker_is_kept_and_none_is_added(lines):
    cfg = limit_loader_workers(_cfg(train=4, val=1, test=0), cpus=2, processes=8, announce=True)
    assert [cfg[f'{n}_dataloader']['num_workers'] for n in ('train', 'val', 'test')] == [1, 1, 0]
    cfg = limit_loader_workers(_cfg(train=2, val=2), cpus=16, processes=1, announce=True)
    assert cfg.train_dataloader.num_workers == 2 and cfg.val_dataloader.num_workers == 2
    assert lines == ['num_workers 4 -> 1 (train): 2 CPUs for 8 processes on this machine']


def test_silent_off_the_first_local_process_and_without_loaders(lines, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '1')
    cfg = limit_loader_workers(_cfg(), cpus=1, processes=1)
    assert cfg.train_dataloader.num_workers == 1  # lowered on every process, said on one
    assert limit_loader_workers(Config(dict(test_dataloader=None)), cpus=1, processes=1) is not None
    assert lines == []


def test_defaults_read_the_affinity_and_torchrun(monkeypatch):
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '3')
    assert local_processes() == 3
    assert local_processes({'LOCAL_WORLD_SIZE': 'x'}) == 1 and local_processes({}) == 1
    expected = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    assert usable_cpus() == expected


def test_a_lowered_loader_no_longer_makes_torch_warn(lines):
    cfg = limit_loader_workers(_cfg(train=usable_cpus() + 2), processes=1, announce=False)
    loader = torch.utils.data.DataLoader(range(4), num_workers=cfg.train_dataloader.num_workers)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # torch's "will create N worker processes" is a UserWarning
        loader.check_worker_number_rationality()
