from .itc import ITCLoss

__all__ = ['ITCLoss']
