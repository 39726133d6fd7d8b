default_scope = 'rsretrieval'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # a line every 50 iterations, and at least every 30 s (a slow run never looks hung)
    logger=dict(type='ProgressLoggerHook', interval=50, max_seconds=30),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2, save_best='mR', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # a table of where each component's initial weights came from (name, file, sha256)
    weight_sources=dict(type='WeightSourcesHook'),
)
# SafeCheckpointHook: numpy content of checkpoints stored so they load with
# torch.load(weights_only=True). NonFiniteLossHook: stop on a NaN/Inf loss, naming the step.
# RandomStateHook + PreemptionHook: checkpoints carry the random state, SIGTERM or Ctrl-C saves
# one and stops; `tools/train.py CONFIG --resume` continues exactly (docs/reliability.md).
# DistillationWarmupHook: momentum distillation, where a model turns it on, ramps up over the
# first epoch (ALBEF); a no-op otherwise. StallWatchdogHook: a warning, saying where, when no
# training iteration finishes for 5 minutes (and 10x the usual iteration time).
custom_hooks = [
    dict(type='SafeCheckpointHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='RandomStateHook'),
    dict(type='PreemptionHook'),
    dict(type='DistillationWarmupHook', warmup_epochs=1),
    dict(type='StallWatchdogHook', timeout=300),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # timeout: seconds a process waits in a collective (all-reduce, all-gather) for the others
    # before it raises and torchrun restarts the group (a rank that stopped or hangs). 30 min is
    # torch's gloo default; its NCCL default (10 min) is short where rank 0 alone computes metrics.
    dist_cfg=dict(backend='nccl', timeout=1800),
)
log_processor = dict(window_size=20, by_epoch=True)
log_level = 'INFO'
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
