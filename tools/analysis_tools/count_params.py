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

from mmengine.config import DictAction  # noqa: E402  (light: torch loads after the checks)

from rsretrieval.cli import check_inputs, fail  # noqa: E402


def _drop_pretrained(node) -> None:
    """Replace every ``pretrained`` path by random initialisation of the same shapes.

    A BERT folder that exists locally lends its ``config.json`` (so a MiniLM
    stays 384 wide); one that does not leaves the ``BertConfig`` defaults,
    which are bert-base-uncased's.
    """
    from rsretrieval.weights.pretrained import resolve_pretrained

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
    check_inputs(config=args.config)
    from rsretrieval.analysis import INFERENCE_MODULES, count_parameters
    from rsretrieval.registry import MODELS
    from rsretrieval.utils import ConfigError, merge_cfg_options, read_config, register_all_modules

    register_all_modules()
    try:
        cfg = merge_cfg_options(read_config(args.config), args.cfg_options)
    except ConfigError as err:
        fail(str(err))
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
