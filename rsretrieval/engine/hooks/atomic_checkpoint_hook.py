"""mmengine's CheckpointHook, ordered so that a crash while saving loses nothing."""

from __future__ import annotations

import contextlib
import os.path as osp
from collections.abc import Iterator

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from rsretrieval.registry import HOOKS
from rsretrieval.utils.atomic_files import atomic_write

from ..atomic_backend import atomic_local_saves
from .file_client_warnings import file_client_deprecations_dropped


class _DeferRemoval:
    """A file backend that records ``remove``/``rmtree`` calls instead of running them."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.removals: list[tuple[str, str]] = []

    def remove(self, path: str) -> None:
        self.removals.append(('remove', path))

    def rmtree(self, path: str) -> None:
        self.removals.append(('rmtree', path))

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def run(self, keep: set[str]) -> None:
        """Carry out the recorded removals, except of the files in ``keep``."""
        for method, path in self.removals:
            if path not in keep and (self._backend.isfile(path) or self._backend.isdir(path)):
                getattr(self._backend, method)(path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with crash-safe saving.

    Registered under its own name (``type='AtomicCheckpointHook'``, as in
    ``configs/_base_/default_runtime.py``); ``type='CheckpointHook'`` stays
    mmengine's. Its saves go through :class:`~rsretrieval.engine.AtomicLocalBackend`
    (every file is written to a temporary name, fsync'ed and renamed: a killed
    save leaves no torn file), installed for the duration of each save only, so
    that importing rsretrieval leaves mmengine's file backends as they are:

    - the new checkpoint is written *before* the one it replaces is removed,
      for the periodic checkpoints (``max_keep_ckpts``) and for the best one
      (mmengine removes the previous best first: a process killed in between
      kept no best checkpoint at all);
    - the ``last_checkpoint`` pointer is replaced atomically, after the
      checkpoint it names is complete.

    It starts and saves without the FileClient deprecation warnings mmengine logs in
    ``before_train`` and in every save (unless ``file_client_args`` is given; see
    :mod:`~rsretrieval.engine.hooks.file_client_warnings`).

    ``_save_checkpoint_with_step`` is mmengine 0.10.7's, reordered;
    ``tests/test_engine/test_crash_safe_checkpoints.py`` fails when the
    installed mmengine's source of the methods this class builds on changes.
    """

    def before_train(self, runner) -> None:
        """mmengine's, without its FileClient deprecation warnings where no ``file_client_args`` is set."""
        with file_client_deprecations_dropped(self.file_client_args is None):
            super().before_train(runner)

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        """Around a save: atomic local writes, and no FileClient warnings without ``file_client_args``."""
        with atomic_local_saves(), file_client_deprecations_dropped(self.file_client_args is None):
            yield

    def needs_losses(self, runner, batch_idx: int) -> bool:
        """Whether this step saves an iteration checkpoint: the training loop then reads the
        waiting losses first, so that a non-finite one stops training before the save."""
        return not self.by_epoch and self.interval > 0 and (runner.iter + 1) % self.interval == 0

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # mmengine's order, except that outdated checkpoints go after the new one is saved
        deferred = _DeferRemoval(self.file_backend)
        backend, self.file_backend = self.file_backend, deferred
        try:
            if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    old = self.keep_ckpt_ids.popleft()
                    if is_main_process():
                        deferred.remove(backend.join_path(self.out_dir, self.filename_tmpl.format(old)))
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
            ckpt_filename = self.filename_tmpl.format(step)
            self.last_ckpt = backend.join_path(self.out_dir, ckpt_filename)
            runner.message_hub.update_info('last_ckpt', self.last_ckpt)
            with self._saving():
                runner.save_checkpoint(
                    self.out_dir,
                    ckpt_filename,
                    self.file_client_args,
                    save_optimizer=self.save_optimizer,
                    save_param_scheduler=self.save_param_scheduler,
                    meta=meta,
                    by_epoch=self.by_epoch,
                    backend_args=self.backend_args,
                    **self.args,
                )
        finally:
            self.file_backend = backend
        if not is_main_process():
            return
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), str(self.last_ckpt))
        deferred.run(keep={str(self.last_ckpt)})

    def _save_best_checkpoint(self, runner, metrics) -> None:
        # mmengine removes the previous best before it writes the new one: defer the removal
        deferred = _DeferRemoval(self.file_backend)
        backend, self.file_backend = self.file_backend, deferred
        try:
            with self._saving():
                super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        paths = [getattr(self, 'best_ckpt_path', None), *getattr(self, 'best_ckpt_path_dict', {}).values()]
        current = {str(p) for p in paths if p}
        deferred.run(keep=current)

    def _publish_model(self, runner, ckpt_path: str) -> None:
        with self._saving():
            super()._publish_model(runner, ckpt_path)
