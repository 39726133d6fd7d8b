"""The demo dataset: RSCaptionDataset over generated scenes."""

from __future__ import annotations

from mmengine.dist import barrier, get_rank

from rsretrieval.registry import DATASETS

from ..caption_dataset import RSCaptionDataset
from .aerial_scenes import make_demo_dataset


@DATASETS.register_module()
class DemoSceneDataset(RSCaptionDataset):
    """:class:`RSCaptionDataset` that first generates the synthetic scenes.

    When ``data_root`` holds no ``dataset_demo.json``, the scenes are drawn
    there (by rank 0 when distributed; the others wait). Then the dataset
    behaves exactly as ``RSCaptionDataset`` on a Karpathy JSON file.

    Args:
        data_root: Where the demo data lives or is generated.
        generator: Keyword arguments of
            :func:`~rsretrieval.datasets.synthetic.make_demo_dataset`
            (``num_train``, ``num_val``, ``num_test``, ``image_size``, ``seed``).
        **kwargs: As for :class:`RSCaptionDataset`.
    """

    def __init__(self, data_root: str, generator: dict | None = None, **kwargs) -> None:
        if get_rank() == 0:
            make_demo_dataset(data_root, **(generator or {}))
        barrier()
        kwargs.setdefault('ann_file', 'dataset_demo.json')
        kwargs.setdefault('data_prefix', dict(img_path='images'))
        super().__init__(data_root=data_root, **kwargs)
