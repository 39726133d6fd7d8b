"""Evaluate models on test sets into one table with its protocol card.

    python tools/analysis_tools/results_table.py \\
        --model cmpagl-demo=configs/cmpagl_demo.py:work_dirs/cmpagl_demo/best_mR_epoch_3.pth \\
        --model remoteclip=configs/clip/remoteclip-vit-b-32_zeroshot_ucm.py:remoteclip-vit-b-32 \\
        --test-set demo-test=configs/cmpagl_demo.py \\
        --test-set ucm-test=configs/cmpagl_ucm.py,data_root=/data/ucm_captions,split=test \\
        --rerank smr --out work_dirs/results_table

A model is ``NAME=CONFIG:WEIGHTS`` (a checkpoint path, a model-zoo name, ``hf-hub:ORG/NAME``)
or ``NAME=MODEL_FOLDER`` (``tools/export_model.py``); its config gives the architecture and
the test preprocessing. A test set is ``NAME=CONFIG``: the data of that config's test
dataloader, read through each model's test pipeline. Both take ``,KEY=VALUE`` overrides
(:mod:`rsretrieval.apis.table_specs`). One pass per (model, test set) gives the raw and, with
``--rerank``, the reranked metrics. Written to ``--out``: ``table.md`` (printed too),
``table.json`` and ``protocol.json``; each model's log under ``logs/<name>/``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from mmengine.config import DictAction  # light: torch loads after the checks

from rsretrieval.apis.table_specs import (
    ModelSpec,
    SpecError,
    TableModel,
    TestSetSpec,
    check_unique_names,
    exported_checkpoint_name,
    parse_model_spec,
    parse_test_set_spec,
)
from rsretrieval.cli import (
    evaluation_stops,
    fail,
    model_folder_files,
    prepare_config_weights,
    reranker_type,
    resolve_named_input,
)
from rsretrieval.utils.checkpoint_checks import checkpoint_problem, file_problem

#: ``--rerank`` types that mean "raw scores only".
NO_RERANKER = 'NoRerank'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate models on test sets into one table with a protocol card')
    parser.add_argument(
        '--model',
        action='append',
        required=True,
        metavar='NAME=CONFIG:WEIGHTS',
        help='a model: config and weights (checkpoint, zoo name, hf-hub:ORG/NAME) or NAME=MODEL_FOLDER; '
        'then ,KEY=VALUE config overrides; repeat for more models',
    )
    parser.add_argument(
        '--test-set',
        action='append',
        required=True,
        metavar='NAME=CONFIG',
        help="a test set: the data of CONFIG's test dataloader; then ,KEY=VALUE dataset arguments "
        '(split=val, data_root=PATH, subset.num_images=50); repeat for more test sets',
    )
    parser.add_argument('--rerank', metavar='NAME', help='rerank every pass with this reranker (smr, mr, itm, ...)')
    parser.add_argument(
        '--rerank-options', nargs='+', action=DictAction, default={}, help="the reranker's arguments, e.g. topk=30"
    )
    parser.add_argument('--amp', action='store_true', help='encode under bf16 autocast where the hardware runs it')
    parser.add_argument('--out', default='work_dirs/results_table', help='output folder (default: %(default)s)')
    parser.add_argument('--verbose', action='store_true', help="keep mmengine's environment and config log")
    args = parser.parse_args()
    if args.rerank_options and not args.rerank:
        parser.error('--rerank-options needs --rerank')
    try:
        specs = [parse_model_spec(text) for text in args.model]
        args.test_sets = [parse_test_set_spec(text) for text in args.test_set]
        check_unique_names(specs, '--model')
        check_unique_names(args.test_sets, '--test-set')
    except SpecError as err:
        fail(str(err))
    args.models = [find_model_files(spec) for spec in specs]
    for test_set in args.test_sets:
        check_test_set_file(test_set)
    if args.rerank:
        args.rerank = reranker_type(args.rerank)
    for model in args.models:
        prepare_config_weights(model.config, model.options)
    return args


def find_model_files(spec: ModelSpec) -> TableModel:
    """The model's local config and weights (a name fetched once into the cache), or one line naming it."""
    where = f'model {spec.name}'
    if spec.weights is None:  # a model folder, or a name of one
        folder = resolve_named_input(spec.config)
        files = model_folder_files(folder)
        if files is None:
            fail(f'{where}: {spec.config} is neither a model folder nor CONFIG:WEIGHTS (folder not found)')
        config, weights, given = files[0], files[1], spec.config
        exported_from = exported_checkpoint_name(folder)
    else:
        config, weights, given = spec.config, resolve_named_input(spec.weights), spec.weights
        exported_from = None
        if problem := file_problem(config, 'config'):
            fail(f'{where}: {problem}')
    if problem := checkpoint_problem(weights):
        fail(f'{where}: {problem}')
    published = not os.path.exists(given) and not exported_from  # given by name: published weights
    return TableModel(spec.name, config, weights, spec.options, given, published, exported_from)


def check_test_set_file(test_set: TestSetSpec) -> None:
    """The test set's config file exists, or one line naming the test set."""
    if problem := file_problem(test_set.config, 'config'):
        fail(f'test set {test_set.name}: {problem}')


def check_configs_and_data(args: argparse.Namespace) -> None:
    """Read every config and build every test set's dataset before any model: one line at the first problem."""
    from rsretrieval.apis.preflight import DataCheckError, check_run_data
    from rsretrieval.apis.table_configs import model_config, test_set_config
    from rsretrieval.utils import ConfigError

    try:
        for model in args.models:
            model_config(model)
        test_set_cfgs = [test_set_config(t) for t in args.test_sets]
    except ConfigError as err:
        fail(str(err))
    for test_set, cfg in zip(args.test_sets, test_set_cfgs):
        try:
            check_run_data(cfg, ['test_dataloader'])
        except DataCheckError as err:
            fail(f'test set {test_set.name} ({test_set.config}): {err}')


def main() -> None:
    args = parse_args()
    # the slow imports (torch, the models), after the arguments are known to be usable
    from rsretrieval.apis.results_table import evaluate_grid
    from rsretrieval.apis.table_report import results_markdown, write_results
    from rsretrieval.utils import CheckpointError, ConfigError, register_all_modules

    register_all_modules(init_default_scope=False)
    check_configs_and_data(args)
    reranker = None if args.rerank in (None, NO_RERANKER) else dict(type=args.rerank, **args.rerank_options)
    try:
        with evaluation_stops():
            result = evaluate_grid(
                args.models,
                args.test_sets,
                os.path.join(args.out, 'logs'),
                reranker=reranker,
                amp=args.amp,
                quiet=not args.verbose,
            )
    except (ConfigError, CheckpointError) as err:
        fail(str(err))
    result.card['command'] = shlex.join(['python', *sys.argv])
    paths = write_results(args.out, result.rows, result.card)
    print(results_markdown(result.rows, result.card))
    print(f'wrote {paths["markdown"]}, {paths["json"]} and {paths["protocol"]}')


if __name__ == '__main__':
    main()
