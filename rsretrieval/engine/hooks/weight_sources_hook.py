"""Log where each component's initial weights came from when training starts."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from rsretrieval.registry import HOOKS
from rsretrieval.weights.provenance import format_sources, random_but_expected, weight_sources


@HOOKS.register_module()
class WeightSourcesHook(Hook):
    """Before the first training iteration, log one table: for each component
    (image backbone, text encoder, fusion head, a whole-model checkpoint), the
    weights it started from (name, file, sha256) or ``random init``.

    A config that lists components in its top-level ``expect_pretrained`` (the
    paper configs do) gets a one-line warning for each of them left at random
    init. A resumed run or one with ``load_from`` says that the checkpoint's
    weights replace these.
    """

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        sources = weight_sources(model)
        if not sources:
            return
        table = format_sources(sources)
        load_from = runner.cfg.get('load_from')
        note = f'\nthen replaced by the weights of {load_from}' if load_from else ''
        runner.logger.info(f'Initial weights of the model:\n{table}{note}')
        for source in random_but_expected(sources, runner.cfg.get('expect_pretrained') or ()):
            runner.logger.warning(
                f'{source.component} ({source.module}) starts from random weights, but this config expects '
                f'pretrained ones (expect_pretrained): set model.{source.component}.pretrained to a weight name '
                '(rsretrieval-weights list)'
            )
