"""Export a trained model as a folder to share: ``python tools/export_model.py CONFIG CKPT OUT_DIR``.

The folder holds ``config.py`` (its model builds without pretrained files or network),
``model.safetensors``, the tokenizer, a model card (``README.md``) and ``rsretrieval.json``;
``init_model(OUT_DIR)``, ``tools/test.py OUT_DIR`` and ``rsretrieval-retrieve index OUT_DIR ...``
load it, and uploaded to the Hugging Face Hub it is ``hf-hub:ORG/NAME`` (docs/sharing.md).
"""

from __future__ import annotations

import argparse
import os

from mmengine.config import DictAction  # light: torch loads after the checks

from rsretrieval.cli import check_inputs, fail


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a trained model as a self-contained folder to share')
    parser.add_argument('config', help='the training config')
    parser.add_argument('checkpoint', help='a checkpoint of that config (e.g. work_dirs/NAME/best_mR_epoch_N.pth)')
    parser.add_argument('out_dir', help='the folder to write (must not exist, or be empty)')
    parser.add_argument(
        '--metrics',
        metavar='JSON',
        help='evaluation results for the model card: the file of tools/test.py --dump-metrics (with --rerank smr: '
        'raw and SMR), or an mmengine JSON log; without it the card says "not evaluated"',
    )
    parser.add_argument('--license', help='license identifier for the card, e.g. apache-2.0, cc-by-4.0')
    parser.add_argument('--overwrite', action='store_true', help='replace an earlier export in OUT_DIR')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides, as for training')
    args = parser.parse_args()
    files = {args.metrics: 'metrics file'} if args.metrics else None
    check_inputs(config=args.config, checkpoints=(args.checkpoint,), files=files)
    if os.path.exists(args.out_dir):
        if not os.path.isdir(args.out_dir):
            fail(f'OUT_DIR is a file: {args.out_dir}')
        if os.listdir(args.out_dir) and not args.overwrite:
            fail(f'OUT_DIR is not empty: {args.out_dir} (pass --overwrite to replace an earlier export)')
    return args


def main() -> None:
    # the export reads local weights only; set before huggingface_hub is imported, which reads it once
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    args = parse_args()
    # the slow imports (torch, the models), after the arguments are known to be usable
    from rsretrieval.apis import ExportError, export_model, read_metrics
    from rsretrieval.utils import CheckpointError, ConfigError

    try:
        metrics = read_metrics(args.metrics) if args.metrics else None
        out = export_model(
            args.config,
            args.checkpoint,
            args.out_dir,
            metrics=metrics,
            overwrite=args.overwrite,
            cfg_options=args.cfg_options,
            license=args.license,
        )
    except (CheckpointError, ConfigError, ExportError, FileExistsError, ValueError) as err:
        fail(str(err))
    except OSError as err:  # a folder that cannot be written: nothing was left behind
        fail(f'cannot write {args.out_dir}: {err}')
    files = sorted(p.relative_to(out).as_posix() for p in out.iterdir())
    print(f'exported {out}: {", ".join(files)}')
    print(f'load it: init_model({str(out)!r}); python tools/test.py {out} --cfg-options data_root=PATH')


if __name__ == '__main__':
    main()
