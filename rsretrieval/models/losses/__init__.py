from .itc import ITCLoss
from .itm import ITMLoss
from .mlm import MLMLoss
from .triplet import OptimizedTripletLoss

__all__ = ['ITCLoss', 'ITMLoss', 'MLMLoss', 'OptimizedTripletLoss']
