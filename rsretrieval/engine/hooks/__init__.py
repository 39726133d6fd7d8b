from .non_finite_loss_hook import NonFiniteLossHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['NonFiniteLossHook', 'SafeCheckpointHook']
