import pickle

import pytest
import torch
from conftest import REPO
from mmengine.config import Config

from rsretrieval.registry import BACKBONES, DATASETS, LOSSES, METRICS, MODELS, RERANKERS, TEXT_ENCODERS
from rsretrieval.utils import load_checkpoint_file, merge_cfg_options
from rsretrieval.weights.pretrained import resolve_pretrained


def test_unknown_type_lists_registered_names():
    with pytest.raises(KeyError, match=r"Unknown backbone type 'Gswinn'.*Registered backbone types .*ViT"):
        BACKBONES.build(dict(type='Gswinn'))
    with pytest.raises(KeyError, match=r'Registered model types .*DualEncoderRetriever'):
        MODELS.build(dict(type='Nope'))


def test_registries_resolve_their_components():
    assert 'RSCaptionDataset' in DATASETS.registered_names()
    assert 'BertTextEncoder' in TEXT_ENCODERS.registered_names()
    assert 'ITCLoss' in LOSSES.registered_names()
    assert 'RetrievalRecall' in METRICS.registered_names()
    sims = torch.rand(2, 3)
    i2t, t2i = RERANKERS.build(dict(type='NoRerank'))(sims)
    assert i2t is sims and t2i is sims


def test_data_root_override_propagates():
    cfg = Config(
        dict(
            data_root='data/x',
            train_dataloader=dict(dataset=dict(data_root='data/x', ann_file='a.json')),
            test_dataloader=dict(dataset=dict(data_root='elsewhere')),
        )
    )
    cfg = merge_cfg_options(cfg, {'data_root': '/new', 'train_dataloader.batch_size': 4})
    assert cfg.train_dataloader.dataset.data_root == '/new'
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.test_dataloader.dataset.data_root == 'elsewhere'
    assert cfg.data_root == '/new'


def test_text_weights_override_moves_both_text_stacks():
    cfg = Config.fromfile('configs/_base_/models/cmpagl_gswin_bert-base.py')
    cfg = merge_cfg_options(cfg, {'text_weights': '/weights/bert'})
    assert cfg.model.text_encoder.pretrained == '/weights/bert'
    assert cfg.model.fusion_head.pretrained == '/weights/bert'
    assert cfg.text_weights == '/weights/bert'


def test_pretrained_resolution_is_local_only(tmp_path):
    assert (resolve_pretrained('minilm-l6') / 'config.json').is_file()
    with pytest.raises(FileNotFoundError, match='Nothing is downloaded'):
        resolve_pretrained('bert-base-uncased')


class Foreign:
    """A class that is on no allow-list."""


def test_checkpoint_with_foreign_objects_is_refused(tmp_path):
    torch.save({'state_dict': {}, 'obj': Foreign()}, tmp_path / 'bad.pth')
    with pytest.raises(pickle.UnpicklingError, match='bad.pth: refused to load objects outside the allow-list'):
        load_checkpoint_file(tmp_path / 'bad.pth')


def test_cfg_options_refuse_keys_that_would_be_ignored():
    from mmengine.config import Config

    from rsretrieval.utils import ConfigError

    cfg = Config.fromfile(str(REPO / 'configs' / 'cmpagl_demo.py'))
    with pytest.raises(ConfigError, match="no top-level key 'data_rot'; did you mean 'data_root'"):
        merge_cfg_options(cfg, {'data_rot': '/x'})
    with pytest.raises(ConfigError, match="CMPAGL takes no argument 'no_such_key'"):
        merge_cfg_options(cfg, {'model.no_such_key': 3})
    with pytest.raises(ConfigError, match="ITCLoss takes no argument 'temprature'; did you mean 'temperature'"):
        merge_cfg_options(cfg, {'model.itc.temprature': 0.1})
    # keys the config has, constructor arguments it leaves out, keys the Runner reads, and
    # new keys of components that take **kwargs all pass
    merged = merge_cfg_options(
        cfg,
        {
            'data_root': '/data',
            'model.backbone.pretrained': '/w.pth',
            'find_unused_parameters': True,
            'train_dataloader.dataset.indices': 8,
            'train_cfg.max_epochs': 1,
        },
    )
    assert merged.model.backbone.pretrained == '/w.pth' and merged.train_dataloader.dataset.indices == 8
    assert merged.train_dataloader.dataset.data_root == '/data'


def test_pin_memory_only_with_an_accelerator():
    from mmengine.config import Config

    from rsretrieval.utils import pin_memory_where_useful

    path = str(REPO / 'configs' / 'cmpagl_ucm.py')
    cpu = pin_memory_where_useful(Config.fromfile(path), accelerator=False)
    assert not any(cpu[k].get('pin_memory') for k in ('train_dataloader', 'val_dataloader', 'test_dataloader'))
    gpu = pin_memory_where_useful(Config.fromfile(path), accelerator=True)
    assert all(gpu[k].pin_memory for k in ('train_dataloader', 'val_dataloader', 'test_dataloader'))
