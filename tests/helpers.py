"""Tiny configs for fast tests."""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator

_counter = itertools.count()

TINY_BERT = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def tiny_model(embed_dim: int = 16) -> dict:
    return dict(
        type='DualEncoderRetriever',
        backbone=dict(type='ViT', img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, drop_path_rate=0.0),
        text_encoder=dict(type='BertTextEncoder', config=TINY_BERT),
        embed_dim=embed_dim,
    )


def tiny_runner_cfg(work_dir: str, data_root: str, max_epochs: int = 1, **overrides) -> dict:
    """A complete Runner config on the tiny demo dataset (unique experiment name)."""
    test_pipeline = [
        dict(type='LoadImage'),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='PackRetrievalInputs'),
    ]
    train_pipeline = [
        dict(type='LoadImage'),
        dict(type='RandomResizedCrop', size=32),
        dict(type='RandomHorizontalFlip'),
        dict(type='PackRetrievalInputs'),
    ]

    def loader(split, test_mode, pipeline, shuffle):
        return dict(
            batch_size=8,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=shuffle),
            collate_fn=dict(type='pseudo_collate'),
            dataset=dict(
                type='RSCaptionDataset',
                data_root=data_root,
                ann_file='dataset_demo.json',
                data_prefix=dict(img_path='images'),
                split=split,
                test_mode=test_mode,
                pipeline=pipeline,
            ),
        )

    cfg = dict(
        default_scope='rsretrieval',
        experiment_name=f'test_{next(_counter)}_{id(work_dir)}',
        work_dir=work_dir,
        model=tiny_model(),
        train_dataloader=loader('train', False, train_pipeline, True),
        val_dataloader=loader('val', True, test_pipeline, False),
        test_dataloader=loader('test', True, test_pipeline, False),
        val_evaluator=dict(type='RetrievalRecall'),
        test_evaluator=dict(type='RetrievalRecall'),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(type='RetrievalValLoop'),
        test_cfg=dict(type='RetrievalTestLoop', progress_bar=False),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(
            checkpoint=dict(type='AtomicCheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1),
        ),
        custom_hooks=[dict(type='SafeCheckpointHook')],
        randomness=dict(seed=0),
        log_level='WARNING',
    )
    cfg.update(overrides)
    return cfg


def tiny_cmpagl(**overrides) -> dict:
    """CMPAGL with a two-stage Gswin (64 px, window 4) and one-layer BERT halves."""
    cfg = dict(
        type='CMPAGL',
        backbone=dict(
            type='Gswin', img_size=64, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4, drop_path_rate=0.0
        ),
        text_encoder=dict(type='BertTextEncoder', config=TINY_BERT),
        fusion_head=dict(type='PreAlignedFusion', num_layers=1, config=TINY_BERT),
        embed_dim=16,
        itc=dict(type='ITCLoss'),
        triplet=dict(type='OptimizedTripletLoss'),
        itm=dict(type='ITMLoss'),
        mlm=dict(type='MLMLoss'),
        queue_size=16,
    )
    cfg.update(overrides)
    return cfg


# --cfg-options that shrink configs/cmpagl_demo.py to seconds on a CPU: widths and depths
# only (the structure and the offline MiniLM text layers stay), 32 px images, one epoch.
TINY_DEMO_OPTIONS = [
    'model.backbone.img_size=32',
    'model.backbone.patch_size=4',
    'model.backbone.embed_dim=8',
    'model.backbone.depths=(1,1)',
    'model.backbone.num_heads=(1,2)',
    'model.text_encoder.num_layers=1',
    'model.fusion_head.layer_start=1',
    'model.embed_dim=16',
    'model.queue_size=32',
    'train_cfg.max_epochs=1',
    'train_dataloader.batch_size=8',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'param_scheduler.0.end=2',
    'train_dataloader.dataset.pipeline.1.size=32',
    'val_dataloader.dataset.pipeline.1.scale=(32,32)',
    'test_dataloader.dataset.pipeline.1.scale=(32,32)',
]


@contextlib.contextmanager
def captured_log(level: int = logging.NOTSET) -> Iterator[list[str]]:
    """The messages the current mmengine logger emits inside the block, at ``level`` or above."""
    from mmengine.logging import MMLogger

    messages: list[str] = []
    handler = logging.Handler(level)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def interrupt_embedding_after(monkeypatch, batches: int):
    """Make ``rsretrieval.apis.iter_image_embeddings`` raise KeyboardInterrupt after ``batches`` batches
    (Ctrl-C in the middle of an index run); returns the real function, to put back."""
    import rsretrieval.apis

    real = rsretrieval.apis.iter_image_embeddings
    done = 0  # over every call: the index asks for one iterator per shard

    def interrupted(*args, **kwargs):
        nonlocal done
        for item in real(*args, **kwargs):
            if done == batches:
                raise KeyboardInterrupt
            done += 1
            yield item

    monkeypatch.setattr(rsretrieval.apis, 'iter_image_embeddings', interrupted)
    return real
