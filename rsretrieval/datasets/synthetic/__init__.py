from .aerial_scenes import Scene, make_demo_dataset, render_scene, sample_scene, scene_captions
from .demo_dataset import DemoSceneDataset

__all__ = ['DemoSceneDataset', 'Scene', 'make_demo_dataset', 'render_scene', 'sample_scene', 'scene_captions']
