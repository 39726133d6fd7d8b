"""The configs of a results table: one model evaluated on another config's test data.

A model is its config's architecture, weights-independent settings and test
pipeline (its preprocessing: a 128 px model resizes a 256 px dataset to 128); a test
set is the dataset of its config's test dataloader (type, data root, annotation file,
format, image folder, split, held-out part, subset). The loader's settings (batch
size, workers), the evaluator and the test loop are the model's; the reranker is the
command's, the same for every row, so the rows compare.
"""

from __future__ import annotations

import copy
import time

from mmengine.config import Config

from rsretrieval.utils.cfg_options import merge_cfg_options
from rsretrieval.utils.config_errors import ConfigError
from rsretrieval.utils.config_files import read_config
from rsretrieval.utils.loader_workers import limit_loader_workers
from rsretrieval.utils.pin_memory import pin_memory_where_useful

from .table_specs import TableModel, TestSetSpec

#: Test-loop settings of a model config that describe its own test split, not another one's.
_OWN_TEST_SPLIT_KEYS = ('label', 'out_file')


def model_config(model: TableModel) -> Config:
    """The model's config with its overrides, as ``tools/test.py`` reads it.

    Raises:
        ConfigError: One line naming the model, the file and the problem.
    """
    try:
        cfg = merge_cfg_options(read_config(model.config), model.options)
    except ConfigError as err:
        raise ConfigError(f'model {model.name}: {err}') from err
    pin_memory_where_useful(cfg)
    limit_loader_workers(cfg)
    cfg.load_from, cfg.resume, cfg.launcher = None, False, 'none'
    return cfg


def test_set_config(test_set: TestSetSpec) -> Config:
    """The test set's config with its overrides.

    Raises:
        ConfigError: One line naming the test set, the file and the problem, or a config
            without ``test_dataloader.dataset``.
    """
    try:
        cfg = merge_cfg_options(read_config(test_set.config), test_set.options)
    except ConfigError as err:
        raise ConfigError(f'test set {test_set.name}: {err}') from err
    if not isinstance((cfg.get('test_dataloader') or {}).get('dataset'), dict):
        raise ConfigError(f'test set {test_set.name}: {test_set.config} has no test_dataloader.dataset')
    return cfg


def test_loader_config(model_cfg: Config, test_set_cfg: Config) -> dict:
    """The model's test dataloader reading the test set's dataset through the model's test pipeline.

    Raises:
        ConfigError: The model config has no test dataloader with a pipeline.
    """
    loader = copy.deepcopy(dict(model_cfg.get('test_dataloader') or {}))
    pipeline = (loader.get('dataset') or {}).get('pipeline')
    if not loader or pipeline is None:
        raise ConfigError(
            f'{model_cfg.filename}: no test_dataloader.dataset.pipeline: the model config must give its '
            'test preprocessing'
        )
    dataset = copy.deepcopy(dict(test_set_cfg.test_dataloader.dataset))
    dataset.update(pipeline=copy.deepcopy(pipeline), test_mode=True)
    loader['dataset'] = dataset
    return loader


def test_loop_config(model_cfg: Config, reranker: dict | None, amp: bool = False) -> dict:
    """The model's test loop with the command's reranker (None: raw scores only).

    The model config's ``label`` and ``out_file`` speak of its own test split and are
    left out; ``amp`` encodes under bf16 autocast where the hardware runs it natively.
    """
    loop = copy.deepcopy(dict(model_cfg.get('test_cfg') or {}))
    for key in (*_OWN_TEST_SPLIT_KEYS, 'reranker'):
        loop.pop(key, None)
    loop.setdefault('type', 'RetrievalTestLoop')
    if reranker:
        loop['reranker'] = copy.deepcopy(reranker)
    if amp:
        loop['autocast'] = 'auto'
    return loop


def runner_config(model: TableModel, model_cfg: Config, test_set_cfg: Config, work_dir: str) -> Config:
    """A copy of the model config whose Runner evaluates on the first test set, logging into ``work_dir``."""
    cfg = copy.deepcopy(model_cfg)
    cfg.test_dataloader = test_loader_config(model_cfg, test_set_cfg)
    cfg.work_dir = work_dir
    # several Runners in one process: mmengine keys its logger and visualizer by this name
    cfg.experiment_name = f'{model.name}_{time.strftime("%Y%m%d_%H%M%S")}_{id(cfg)}'
    return cfg
