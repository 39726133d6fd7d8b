from .momentum import FeatureQueue, MomentumCopy

__all__ = ['FeatureQueue', 'MomentumCopy']
