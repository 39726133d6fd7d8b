"""TensorBoard logging for a run, added to its config."""

from __future__ import annotations

from mmengine.config import Config


def add_tensorboard(cfg: Config) -> Config:
    """Add mmengine's ``TensorboardVisBackend`` to the config's visualizer (once).

    Its event files go to ``WORK_DIR/<timestamp>/vis_data``, beside the JSON
    scalars: ``tensorboard --logdir WORK_DIR``. Needs the optional
    ``tensorboard`` package (``pip install -e .[tensorboard]``).
    """
    visualizer = cfg.get('visualizer') or dict(type='Visualizer')
    backends = list(visualizer.get('vis_backends') or [dict(type='LocalVisBackend')])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    cfg.visualizer = dict(visualizer, vis_backends=backends)
    return cfg
