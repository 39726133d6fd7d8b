from .autocast_optim_wrapper import AutocastOptimWrapper
from .merged_groups_constructor import MergedGroupsOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'MergedGroupsOptimWrapperConstructor']
