"""Compile chosen submodules of the model with ``torch.compile``, in place."""

from __future__ import annotations

from collections.abc import Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from rsretrieval.registry import HOOKS

#: The submodules compiled when none are named: the image, text and fusion encoders.
ENCODERS = ('backbone', 'text_encoder', 'fusion_head')


@HOOKS.register_module()
class CompileModulesHook(Hook):
    """``torch.compile`` the encoders before training or testing.

    Each named submodule is compiled in place (``nn.Module.compile``): its
    parameters and state-dict keys do not change, so checkpoints load into
    compiled and eager models alike. The model's Python-level logic
    (tokenisation, negative sampling, the loss bookkeeping) stays eager, which
    keeps graph breaks out of the compiled parts. ``tools/train.py --compile``
    and ``tools/test.py --compile`` add this hook.

    Args:
        modules: Dotted names of submodules of the (unwrapped) model; each
            must exist. None (default): whichever of the encoders
            (:data:`ENCODERS`) the model has, so one hook serves CMPAGL, CLIP
            and two-tower models alike.
        options: Keyword arguments of ``torch.compile`` (``mode``,
            ``backend``, ``dynamic``, ...).
    """

    priority = 'VERY_HIGH'

    def __init__(self, modules: Sequence[str] | None = None, options: dict | None = None) -> None:
        self.modules = None if modules is None else list(modules)
        self.options = dict(options or {})
        self._done = False

    def before_run(self, runner) -> None:
        if self._done:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if self.modules is None:
            self.modules = [name for name in ENCODERS if getattr(model, name, None) is not None]
        for name in self.modules:
            try:
                module = model.get_submodule(name)
            except AttributeError as err:
                raise KeyError(f'CompileModulesHook: the model has no submodule {name!r} ({err})') from None
            if module is None:
                continue  # switched off by the config (e.g. fusion_head=None)
            module.compile(**self.options)
        runner.logger.info(f'torch.compile {self.options or "(defaults)"}: {", ".join(self.modules)}')
        self._done = True
