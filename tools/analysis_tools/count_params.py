"""Parameters of a config's model: total, inference path, and per component.

python tools/analysis_tools/count_params.py configs/_base_/models/cmpagl_gswin_bert-base.py --random-init

The inference count is what retrieval runs: the image backbone, the text encoder
and the two projections (the fusion encoder, its heads, momentum encoders and
queues are training-time only; momentum weights are buffers, not parameters).
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from mmengine.config import Config, DictAction  # noqa: E402

from rsretrieval.analysis import INFERENCE_MODULES, count_parameters  # noqa: E402
from rsretrieval.registry import MODELS  # noqa: E402
from rsretrieval.utils import merge_cfg_options, register_all_modules, resolve_pretrained  # noqa: E402


def _drop_pretrained(node) -> None:
    """Replace every ``pretrained`` path by random initialisation of the same shapes.

    A BERT folder that exists locally lends its ``config.json`` (so a MiniLM
    stays 384 wide); one that does not leaves the ``BertConfig`` defaults,
    which are bert-base-uncased's.
    """
    if isinstance(node, dict):
        if node.get('pretrained'):
            try:
                folder = resolve_pretrained(node['pretrained'])
            except (FileNotFoundError, ValueError):
                folder = None
            config_file = osp.join(str(folder), 'config.json') if folder else None
            if config_file and osp.isfile(config_file) and 'config' not in node:
                with open(config_file) as f:
                    node['config'] = {k: v for k, v in json.load(f).items() if not k.startswith('_')}
            node['pretrained'] = None
        for value in node.values():
            _drop_pretrained(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--random-init', action='store_true', help='build without loading pretrained weights')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    register_all_modules()
    cfg = merge_cfg_options(Config.fromfile(args.config), args.cfg_options)
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    if args.random_init:
        _drop_pretrained(model_cfg)
    model = MODELS.build(model_cfg)
    counts = count_parameters(model)
    print(f'{"component":<22}{"parameters":>16}')
    for name, count in counts['per_module'].items():
        if count:
            print(f'{name:<22}{count / 1e6:>14.2f} M')
    print(f'{"total":<22}{counts["total"] / 1e6:>14.2f} M')
    print(f'{"inference":<22}{counts["inference"] / 1e6:>14.2f} M  ({" + ".join(INFERENCE_MODULES)})')


if __name__ == '__main__':
    main()
