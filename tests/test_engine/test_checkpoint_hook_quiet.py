"""Our checkpoint hooks start and save without mmengine's FileClient deprecation warnings."""

import logging
from types import SimpleNamespace

import pytest
from helpers import tiny_runner_cfg
from mmengine.fileio import FileClient
from mmengine.logging import MessageHub, MMLogger

from rsretrieval.engine.hooks import AtomicCheckpointHook


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def logged():
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    yield records.messages
    logger.removeHandler(records)


def _runner(work_dir: str) -> SimpleNamespace:
    return SimpleNamespace(
        work_dir=work_dir, logger=MMLogger.get_current_instance(), message_hub=MessageHub.get_current_instance()
    )


def _deprecations(messages: list[str]) -> list[str]:
    return [m for m in messages if 'FileClient' in m or 'HardDiskBackend' in m]


def test_before_train_logs_no_file_client_deprecation(tmp_path, logged):
    hook = AtomicCheckpointHook(interval=1)
    hook.before_train(_runner(str(tmp_path)))
    assert _deprecations(logged) == []
    assert f'Checkpoints will be saved to {tmp_path}.' in logged  # the hook's other lines still pass
    FileClient.infer_client(None, str(tmp_path))  # outside the hook, mmengine's warning is untouched
    assert len(_deprecations(logged)) == 1


def test_file_client_args_still_get_their_warning(tmp_path, logged):
    hook = AtomicCheckpointHook(interval=1, file_client_args=dict(backend='disk'))
    hook.before_train(_runner(str(tmp_path)))
    assert any(m.startswith('"FileClient" will be deprecated') for m in logged)


def test_a_training_run_that_saves_logs_no_file_client_deprecation(tmp_path, demo_root):
    from mmengine.runner import Runner

    cfg = tiny_runner_cfg(str(tmp_path / 'work'), str(demo_root), max_epochs=1)
    cfg['default_hooks']['checkpoint'] = dict(type='AtomicCheckpointHook', interval=1, save_best='mR', rule='greater')
    cfg['custom_hooks'] = [*cfg['custom_hooks'], dict(type='PreemptionHook')]
    runner = Runner.from_cfg(cfg)
    records = _Records()
    runner.logger.addHandler(records)
    try:
        runner.train()
    finally:
        runner.logger.removeHandler(records)
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file() and list((tmp_path / 'work').glob('best_mR_*.pth'))
    assert _deprecations(records.messages) == []
