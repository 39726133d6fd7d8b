import numpy as np
import torch

from rsretrieval.datasets import clean_caption
from rsretrieval.datasets.transforms import PackRetrievalInputs, RandomHorizontalFlip, RandomResizedCrop, read_rgb
from rsretrieval.registry import TRANSFORMS


def test_clean_caption():
    assert clean_caption("  Two RED planes, near the building's roof.  ") == 'two red planes near the buildings roof'
    assert clean_caption('a b c d', max_words=2) == 'a b'
    assert clean_caption('?!.') == ''


def test_random_resized_crop_area_and_size():
    np.random.seed(0)
    t = RandomResizedCrop(size=24, scale=(0.5, 1.0))
    img = np.random.randint(0, 255, (40, 60, 3), np.uint8)
    for _ in range(20):
        out = t(dict(img=img.copy()))
        top, left, h, w = out['crop_box']
        assert out['img'].shape == (24, 24, 3)
        assert 0.5 * 40 * 60 * 0.9 <= h * w <= 40 * 60
        assert top + h <= 40 and left + w <= 60


def test_flip_swaps_sides_in_caption():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = RandomHorizontalFlip(prob=1.0)(dict(img=img, caption='a plane on the left and a ship on the right'))
    assert out['caption'] == 'a plane on the right and a ship on the left'
    assert np.array_equal(out['img'], img[:, ::-1])
    kept = RandomHorizontalFlip(prob=0.0)(dict(img=img, caption='left'))
    assert kept['caption'] == 'left' and kept['flip'] is False


def test_mmcv_resize_resolves_and_pack():
    resize = TRANSFORMS.build(dict(type='Resize', scale=(8, 8), keep_ratio=False))
    out = PackRetrievalInputs()(resize(dict(img=np.zeros((5, 7, 3), np.uint8), image_id=3, sample_idx=1)))
    assert out['inputs'].shape == (3, 8, 8) and out['inputs'].dtype == torch.uint8
    assert out['data_samples'] == dict(sample_idx=1, image_id=3)


def test_read_rgb_modes(tmp_path):
    from PIL import Image

    grey16 = np.full((4, 4), 65535, np.uint16)
    Image.fromarray(grey16).save(tmp_path / 'g16.tif')
    Image.fromarray(np.full((4, 4, 4), 200, np.uint8), 'RGBA').save(tmp_path / 'rgba.png')
    Image.fromarray(np.full((4, 4), 7, np.uint8), 'L').save(tmp_path / 'l.png')
    assert (read_rgb(str(tmp_path / 'g16.tif')) == 255).all()
    assert read_rgb(str(tmp_path / 'rgba.png')).shape == (4, 4, 3)
    assert (read_rgb(str(tmp_path / 'l.png')) == 7).all()
