"""Where each component's initial weights came from: the table and the warning."""

from __future__ import annotations

import hashlib
import logging
from types import SimpleNamespace

from helpers import tiny_cmpagl
from mmengine.config import Config
from mmengine.logging import MMLogger

from rsretrieval.engine.hooks import WeightSourcesHook
from rsretrieval.registry import MODELS
from rsretrieval.weights.pretrained import resolve_pretrained
from rsretrieval.weights.provenance import RANDOM_INIT, format_sources, random_but_expected, weight_sources


def _model(**text):
    cfg = tiny_cmpagl()
    cfg['text_encoder'] = dict(type='BertTextEncoder', num_layers=1, **text)
    cfg['fusion_head'] = dict(type='PreAlignedFusion', num_layers=1, layer_start=1, **text)
    return MODELS.build(cfg)


def test_weight_sources_name_file_and_sha256_or_random_init():
    sources = {s.component: s for s in weight_sources(_model(pretrained='minilm-l6'))}
    assert sources['backbone'].is_random and sources['backbone'].module == 'Gswin'
    folder = resolve_pretrained('minilm-l6')
    digest = hashlib.sha256((folder / 'model.safetensors').read_bytes()).hexdigest()
    for name in ('text_encoder', 'fusion_head'):
        assert sources[name].spec == 'minilm-l6' and sources[name].path == str(folder)
        assert sources[name].sha256 == digest
    table = format_sources(list(sources.values())).splitlines()
    assert table[0].split() == ['component', 'module', 'weights', 'file', 'sha256']
    assert RANDOM_INIT in table[1] and digest in table[2]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_hook_logs_one_table_and_warns_for_expected_but_random_components():
    model = _model(pretrained='minilm-l6')
    logger = MMLogger.get_instance('provenance_test', logger_name='provenance_test')
    records = _Records()
    logger.addHandler(records)
    cfg = Config(dict(expect_pretrained=('backbone', 'text_encoder'), load_from=None))
    WeightSourcesHook().before_train(SimpleNamespace(model=model, cfg=cfg, logger=logger))
    logger.removeHandler(records)
    messages = [r.getMessage() for r in records.records]
    assert sum('Initial weights of the model' in m for m in messages) == 1
    warnings = [r.getMessage() for r in records.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith('backbone (Gswin) starts from random weights')
    assert '\n' not in warnings[0]
    sources = weight_sources(model)
    assert [s.component for s in random_but_expected(sources, ('backbone', 'text_encoder'))] == ['backbone']
