"""Evaluate models on test sets: one test-loop pass per (model, test set), metrics and protocol card.

Each model is built and its weights loaded once; each test set is then one pass of
the model's test loop (with the command's reranker the loop returns the reranked
metrics and the raw ones under ``raw/<key>``; with caption-equivalent recall,
``equiv/<key>`` and ``raw/equiv/<key>`` and the ``shared/*`` counts). The protocol
card (:mod:`rsretrieval.apis.protocol_card`) is gathered from what was evaluated:
the datasets the loops read, the checkpoints' meta, the reranker the loop built.
"""

from __future__ import annotations

import datetime
import gc
import os.path as osp
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from rsretrieval.engine.stop_signals import leave_stop_signals_to_main_process
from rsretrieval.utils.checkpoint_errors import CheckpointError
from rsretrieval.utils.model_loading import load_checkpoint_into_runner
from rsretrieval.utils.quiet_logging import quiet_runner

from .dataset_identity import data_keys, loader_dataset
from .protocol_card import CARD_FORMAT, environment_card, model_card, precision_entry, test_set_card
from .selection_rule import SelectionRule, selection_rule
from .table_configs import model_config, runner_config, test_loader_config, test_loop_config, test_set_config
from .table_specs import TableModel, TestSetSpec

#: Row notes: a test set the model's checkpoint was selected on, or that it trained on.
SELECTED_ON_THIS_SET = 'checkpoint selected on this set'
TRAINED_ON_THIS_SET = 'model trained on this set'


@dataclass
class GridResult:
    """What :func:`evaluate_grid` returns.

    Attributes:
        rows: One per (model, test set), models outermost: ``model``, ``test_set``,
            ``metrics`` (the loop's keys), ``seconds`` (the pass) and ``notes``.
        card: The protocol card: ``format``, ``created``, ``environment``,
            ``reranker``, ``models`` and ``test_sets``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)


def evaluate_grid(
    models: Sequence[TableModel],
    test_sets: Sequence[TestSetSpec],
    work_dir: str,
    reranker: dict | None = None,
    amp: bool = False,
    quiet: bool = True,
) -> GridResult:
    """Evaluate every model on every test set and gather the protocol card.

    Args:
        models: The models, with their files found.
        test_sets: The test sets.
        work_dir: Where each model's Runner logs (``<work_dir>/<model name>/``).
        reranker: ``RERANKERS`` config applied in every pass (None: raw scores only).
        amp: Encode under bf16 autocast where the hardware runs it natively.
        quiet: Build the Runners without mmengine's environment dump and config.

    Raises:
        ConfigError: A config cannot be read or does not fit (one line).
        CheckpointError: Weights that do not fit their model (one line).
    """
    test_set_cfgs = [test_set_config(t) for t in test_sets]
    result = GridResult()
    models_card, sets_card, reranker_record, device = [], {}, None, torch.device('cpu')
    for model in models:
        model_dir = osp.join(work_dir, model.name)
        passes, card = _evaluate_model(model, test_sets, test_set_cfgs, model_dir, reranker, amp, quiet)
        models_card.append(card)
        for test_set, one in zip(test_sets, passes):
            if test_set.name not in sets_card:  # the same data for every model: described once
                sets_card[test_set.name] = test_set_card(test_set, one.dataset, one.row['metrics'])
            result.rows.append(one.row)
            reranker_record = reranker_record or one.reranker
            device = one.device
    result.card = dict(
        format=CARD_FORMAT,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        environment=environment_card(device),
        reranker=reranker_record,
        models=models_card,
        test_sets=[sets_card[t.name] for t in test_sets],
    )
    return result


@dataclass
class _Pass:
    """One test-loop pass: its table row, and what the card reads of it."""

    row: dict[str, Any]
    dataset: object
    reranker: dict[str, Any] | None
    device: torch.device


def _evaluate_model(
    model: TableModel,
    test_sets: Sequence[TestSetSpec],
    test_set_cfgs: list[Config],
    work_dir: str,
    reranker: dict | None,
    amp: bool,
    quiet: bool,
) -> tuple[list[_Pass], dict[str, Any]]:
    """One model on every test set: its passes, in test-set order, and its card."""
    model_cfg = model_config(model)
    runner, meta = _load_model(model, runner_config(model, model_cfg, test_set_cfgs[0], work_dir), quiet)
    rule = selection_rule(model.checkpoint_name, model_cfg, published=model.published, meta=meta)
    loop_cfg = test_loop_config(model_cfg, reranker, amp)
    runner.call_hook('before_run')
    passes = []
    for test_set, test_set_cfg in zip(test_sets, test_set_cfgs):
        runner.logger.info(f'results table: {model.name} on {test_set.name}')
        loop = runner.build_test_loop(
            dict(loop_cfg, dataloader=test_loader_config(model_cfg, test_set_cfg), evaluator=model_cfg.test_evaluator)
        )
        row = dict(model=model.name, test_set=test_set.name, notes=row_notes(model_cfg, rule, test_set_cfg))
        passes.append(_run_pass(runner, loop, row))
    runner.call_hook('after_run')
    card = model_card(model, model_cfg, rule, precision_entry(loop_cfg.get('autocast'), passes[0].device), meta)
    del runner  # the next model is built after this one is freed
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return passes, card


def _load_model(model: TableModel, cfg: Config, quiet: bool) -> tuple[Runner, dict | None]:
    """The model's Runner with its weights loaded strictly, and the checkpoint's ``meta`` (None without one)."""
    with quiet_runner(cfg, enabled=quiet):
        runner = Runner.from_cfg(cfg)
    try:
        checkpoint = load_checkpoint_into_runner(runner, model.weights)
    except CheckpointError as err:
        raise CheckpointError(f'model {model.name}: {err}') from err
    meta = checkpoint.get('meta')
    return runner, meta if isinstance(meta, dict) else None


def _run_pass(runner: Runner, loop: object, row: dict[str, Any]) -> _Pass:
    """Run a built test loop; ``row`` gets its metrics and seconds."""
    leave_stop_signals_to_main_process(loop.dataloader)  # Ctrl-C and SIGTERM stop in the main process, in one line
    row['metrics'] = {k: float(v) for k, v in loop.run().items()}
    row['seconds'] = round(float(getattr(loop, 'timings', {}).get('total', float('nan'))), 3)
    network = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return _Pass(row, loop.dataloader.dataset, getattr(loop, 'reranker_record', None), network.data_preprocessor.device)


def row_notes(model_cfg, rule: SelectionRule, test_set_cfg) -> list[str]:
    """What a reader of the row must know: the checkpoint was selected on this set, or the model trained on it."""
    tested = data_keys(loader_dataset(test_set_cfg, 'test_dataloader'))
    notes = []
    if rule.kind == 'best' and tested & data_keys(loader_dataset(model_cfg, 'val_dataloader')):
        notes.append(SELECTED_ON_THIS_SET)
    if tested & data_keys(loader_dataset(model_cfg, 'train_dataloader')):
        notes.append(TRAINED_ON_THIS_SET)
    return notes
