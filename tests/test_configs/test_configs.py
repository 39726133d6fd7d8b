"""Every config in configs/ loads, builds its model and resolves its datasets; every
ablation differs from its parent in exactly the switches the paper's table names."""

from __future__ import annotations

import ast
import copy
import inspect
from pathlib import Path

import pytest
import torch
from conftest import REPO, SHARED_DATA
from mmengine.config import Config
from mmengine.dataset import BaseDataset

from rsretrieval.registry import DATASETS, MODELS, TRANSFORMS
from rsretrieval.weights.pretrained import resolve_pretrained

CONFIGS = REPO / 'configs'
ALL_CONFIGS = sorted(p for p in CONFIGS.rglob('*.py') if '_base_' not in p.parts)
ABLATIONS = sorted((CONFIGS / 'ablations').rglob('*.py'))


def _ids(paths):
    return [str(p.relative_to(CONFIGS)) for p in paths]


# ----------------------------------------------------------------- shrinking widths
def _bert_layers(pretrained) -> int | None:
    try:
        return Config.fromfile(str(resolve_pretrained(pretrained) / 'config.json')).num_hidden_layers
    except (FileNotFoundError, OSError):
        return None


OPEN_CLIP_TOWERS = ('OpenCLIPVision', 'OpenCLIPText')


def _shrink_open_clip(tower: dict) -> None:
    """An open_clip tower config at small widths (embedding 16), in place; no checkpoint."""
    from rsretrieval.models.utils.open_clip_weights import open_clip_config

    cfg = open_clip_config(tower['arch'], tower.get('model_cfg'))
    vision, text = cfg['vision_cfg'], cfg['text_cfg']
    if isinstance(vision.get('layers'), (list, tuple)):  # ResNet: heads = 32 * width / head_width
        heads = 32 * vision.get('width', 64) // vision.get('head_width', 64)
        small_vision = dict(width=8, head_width=8 * 32 // heads)
    else:
        heads = vision.get('width', 768) // vision.get('head_width', 64)
        small_vision = dict(width=4 * heads, head_width=4)
    own = dict(tower.get('model_cfg') or {})
    own['embed_dim'] = 16
    own['vision_cfg'] = dict(own.get('vision_cfg') or {}, **small_vision)
    own['text_cfg'] = dict(own.get('text_cfg') or {}, width=4 * text.get('heads', 8))
    tower['model_cfg'], tower['pretrained'] = own, None


def _open_clip_layers(tower: dict) -> tuple[int, int]:
    from rsretrieval.models.utils.open_clip_weights import open_clip_config

    cfg = open_clip_config(tower['arch'], tower.get('model_cfg'))
    return cfg['vision_cfg']['layers'], cfg['text_cfg']['layers']


def shrink_widths(model: dict) -> dict:
    """The same model with narrow layers: depths, layer counts, heads and switches stay.

    Pretrained text weights are replaced by a random BERT of the same layer count
    (width 48, the same vocabulary), so configs that point at a local folder that
    is absent here (BERT-base) build too. open_clip towers keep their architecture's
    depths and heads at small widths, with random weights.
    """
    model = copy.deepcopy(model)
    backbone = model['backbone']
    if backbone['type'] == 'ViT':
        backbone['embed_dim'] = 4 * backbone.get('num_heads', 12)
    elif backbone['type'] in OPEN_CLIP_TOWERS:
        _shrink_open_clip(backbone)
    else:  # Gswin, Swin, GCViT: widths double per stage, heads divide them
        backbone['embed_dim'] = 8 * backbone['num_heads'][0]
    text = model['text_encoder']
    if text['type'] in OPEN_CLIP_TOWERS:
        _shrink_open_clip(text)
        model['pretrained'] = None  # CLIPRetriever's checkpoint (absent here, and of other widths)
        return model
    layers = _bert_layers(text['pretrained']) if text.get('pretrained') else None
    if layers is None:
        layers = text.get('num_layers') or 1
        if model.get('fusion_head'):
            layers += model['fusion_head'].get('num_layers', 0)
    small = dict(hidden_size=48, num_hidden_layers=layers, num_attention_heads=12, intermediate_size=96)
    for key in ('text_encoder', 'fusion_head'):
        if model.get(key) and model[key].get('pretrained'):
            model[key]['pretrained'] = None
            model[key]['config'] = small
    text.setdefault('tokenizer', 'minilm-l6')  # the bert-base-uncased vocabulary
    return model


# --------------------------------------------------------------------- every config
@pytest.mark.parametrize('path', ALL_CONFIGS, ids=_ids(ALL_CONFIGS))
def test_config_builds_its_model_and_resolves_its_datasets(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'rsretrieval'
    model_cfg = cfg.model.to_dict()
    if OPEN_CLIP_TOWERS[0] in str(model_cfg) or OPEN_CLIP_TOWERS[1] in str(model_cfg):
        pytest.importorskip('open_clip')
    torch.manual_seed(0)
    model = MODELS.build(shrink_widths(model_cfg))

    # the structure is the config's
    backbone = model_cfg['backbone']
    assert type(model.backbone).__name__ == backbone['type']
    if backbone['type'] == 'Gswin':
        blocks = [b for stage in model.backbone.stages for b in stage.blocks]
        assert len(blocks) == sum(backbone['depths'])
        for block in blocks:
            assert block.use_global_window == backbone.get('use_global_window', True)
            assert block.use_shifted_window == backbone.get('use_shifted_window', True)
    text = model_cfg['text_encoder']
    if text['type'] == 'BertTextEncoder':
        assert len(model.text_encoder.bert.encoder.layer) == text['num_layers']
    else:  # an open_clip text tower: its architecture's depth
        assert len(model.text_encoder.transformer.resblocks) == _open_clip_layers(text)[1]
    if backbone['type'] == 'OpenCLIPVision' and model.backbone.kind == 'vit':
        assert len(model.backbone.visual.transformer.resblocks) == _open_clip_layers(backbone)[0]
    if model_cfg['type'] == 'CMPAGL':
        assert type(model.fusion_head).__name__ == model_cfg['fusion_head']['type']
        for loss in ('itc', 'triplet', 'itm', 'mlm'):
            assert (getattr(model.pre_alignment if loss in ('itc', 'triplet') else model, f'{loss}_loss') is None) == (
                model_cfg.get(loss) is None
            ), loss
        assert (model.fusion_head.itm_head is None) == (
            model_cfg.get('itm') is None and model_cfg.get('retrieval_scores', 'embedding') == 'embedding'
        )

    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        _check_dataset_definition(cfg[name]['dataset'].to_dict(), test_mode=name != 'train_dataloader')
    reranker = cfg.get('test_cfg', {}).get('reranker')
    if reranker:
        from rsretrieval.registry import RERANKERS

        RERANKERS.build(reranker)


def _check_dataset_definition(dataset: dict, test_mode: bool, part: bool = False) -> None:
    """The arguments a dataset config gives are its class's; a dataset that combines others
    (``datasets=[...]``) has each of them checked too, as parts: no pipeline of their own."""
    cls = DATASETS.get(dataset['type'])
    assert cls is not None, f'unknown dataset type {dataset["type"]}'
    # the constructor arguments of the class and of the classes it passes **kwargs to
    accepted = {name for c in cls.__mro__ if '__init__' in vars(c) for name in inspect.signature(c).parameters}
    assert issubclass(cls, BaseDataset)
    unknown = set(dataset) - accepted - {'type'}
    assert not unknown, f'{dataset["type"]} takes no {sorted(unknown)}'
    for child in dataset.get('datasets', []):
        _check_dataset_definition(child, test_mode, part=True)
    if part:  # the combined dataset reads its parts in its own mode, with its own pipeline
        assert bool(dataset.get('test_mode', test_mode)) == test_mode and not dataset.get('pipeline')
        return
    assert bool(dataset.get('test_mode', False)) == test_mode
    for step in dataset['pipeline']:
        assert TRANSFORMS.get(step['type']) is not None, step['type']


# ------------------------------------------------------------------ the paper setting
PAPER_CONFIGS = [CONFIGS / f'cmpagl_{name}.py' for name in ('rsicd', 'rsitmd', 'ucm', 'sydney')]


@pytest.mark.parametrize('path', PAPER_CONFIGS, ids=_ids(PAPER_CONFIGS))
def test_table_ii_configs_hold_the_paper_settings(path):
    cfg = Config.fromfile(str(path))
    b = cfg.model.backbone
    assert (b.type, b.img_size, b.patch_size, b.window_size, tuple(b.depths)) == ('Gswin', 256, 4, 8, (1, 1, 3, 1))
    assert cfg.model.text_encoder.num_layers == 6 and cfg.model.fusion_head.num_layers == 6
    assert all(cfg.model[k] for k in ('itc', 'triplet', 'itm', 'mlm'))
    assert (cfg.model.queue_size, cfg.model.momentum) == (65536, 0.995)
    assert cfg.train_dataloader.batch_size == 16 and cfg.train_cfg.max_epochs == 50
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert (crop.type, crop.size, tuple(crop.scale)) == ('RandomResizedCrop', 256, (0.5, 1.0))
    assert cfg.test_cfg.reranker == dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9)


@pytest.mark.parametrize('path', PAPER_CONFIGS, ids=_ids(PAPER_CONFIGS))
def test_table_ii_configs_start_from_the_papers_weights(path):
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.pretrained == 'swin-t-in1k'
    assert cfg.model.text_encoder.pretrained == cfg.model.fusion_head.pretrained == 'bert-base-uncased'
    assert cfg.model.text_pooling == 'cls'
    assert set(cfg.expect_pretrained) == {'backbone', 'text_encoder', 'fusion_head'}


MINILM_CONFIGS = sorted(CONFIGS.glob('*_minilm-l6.py'))


@pytest.mark.parametrize('path', MINILM_CONFIGS, ids=_ids(MINILM_CONFIGS))
def test_minilm_variants_need_no_network_and_differ_only_in_weights(path):
    from rsretrieval.weights import find_weight_specs, resolve_weights

    cfg = Config.fromfile(str(path))
    for _, spec in find_weight_specs(cfg.to_dict()):
        resolve_weights(spec, local_only=True)  # packaged: nothing to fetch
    paper = Config.fromfile(str(path).replace('_minilm-l6', ''))
    changed = config_diff(cfg, paper)
    allowed = ('model.backbone.pretrained', 'model.text_encoder.pretrained', 'model.fusion_head.pretrained')
    allowed += ('model.text_pooling', 'text_weights', 'image_weights', 'expect_pretrained')
    assert changed and all(k.startswith(allowed) for k in changed), sorted(changed)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=_ids(ALL_CONFIGS))
def test_every_weight_a_config_names_is_a_known_name_or_a_spec(path):
    from rsretrieval.weights import find_weight_specs, parse_spec

    for key, spec in find_weight_specs(Config.fromfile(str(path)).to_dict()):
        assert parse_spec(spec).kind != 'path', f'{key}={spec!r}: a local path in a shipped config'


def test_paper_schedule_reaches_1e6_at_epoch_30_and_stays():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = Config.fromfile(str(CONFIGS / '_base_/schedules/paper_50e.py'))
    model = torch.nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    iters_per_epoch = 4
    schedulers = []
    for sched in cfg.param_scheduler:
        sched = dict(sched)
        if sched.pop('convert_to_iter_based', False):
            sched.update(by_epoch=False, begin=sched['begin'] * iters_per_epoch, end=sched['end'] * iters_per_epoch)
            sched['T_max'] *= iters_per_epoch
        schedulers.append(PARAM_SCHEDULERS.build(sched, default_args=dict(optimizer=wrapper)))
    lr_at_epoch = []
    for _ in range(cfg.max_epochs):
        lr_at_epoch.append(wrapper.get_lr()['lr'][0])
        for _step in range(iters_per_epoch):
            for s in schedulers:
                s.step()
    assert lr_at_epoch[0] == pytest.approx(1e-5)
    assert 1e-6 < lr_at_epoch[15] < 1e-5
    # mmengine's last update is at the end's previous iteration: within 1 % of 1e-6
    assert all(lr == pytest.approx(1e-6, rel=1e-2) for lr in lr_at_epoch[30:]), lr_at_epoch[29:]
    assert len(set(lr_at_epoch[30:])) == 1
    assert all(a >= b for a, b in zip(lr_at_epoch, lr_at_epoch[1:]))


# ------------------------------------------------------------------------ ablations
# Each ablation names its parent as its first _base_ and changes exactly these keys
# (a key covers everything below it). The paper's row for each is in docs/configs.md.
_STD_MI = ['model.fusion_head', 'model.itc', 'model.triplet', 'model.retrieval_scores']
INTENDED = {}
for _ds in ('rsicd', 'rsitmd'):
    INTENDED.update(
        {
            f'components/gswin_itc-mlm-itm-triplet_{_ds}.py': ('cmpagl_' + _ds + '.py', ['test_cfg.reranker']),
            f'components/gswin_itc-mlm-itm_{_ds}.py': (f'gswin_itc-mlm-itm-triplet_{_ds}.py', ['model.triplet']),
            f'components/gswin_itc-mlm_{_ds}.py': (f'gswin_itc-mlm-itm_{_ds}.py', ['model.itm']),
            f'components/gswin-no-gw_itc-mlm_{_ds}.py': (
                f'gswin_itc-mlm_{_ds}.py',
                ['model.backbone.use_global_window'],
            ),
            f'components/gswin-no-slw_itc-mlm_{_ds}.py': (
                f'gswin_itc-mlm_{_ds}.py',
                ['model.backbone.use_shifted_window'],
            ),
            f'components/vit_itc-mlm_{_ds}.py': (f'gswin_itc-mlm_{_ds}.py', ['model.backbone']),
            f'fusion/std-mi_{_ds}.py': (f'gswin_itc-mlm-itm-triplet_{_ds}.py', _STD_MI),
        }
    )
for _bb in ('vit', 'swin', 'gcvit', 'swin-gswin-layout', 'gcvit-gswin-layout'):
    INTENDED[f'backbones/{_bb}_itc-mlm-itm-triplet_rsitmd.py'] = (
        'gswin_itc-mlm-itm-triplet_rsitmd.py',
        ['model.backbone'],
    )


def _flatten(node, prefix='') -> dict:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f'{prefix}.{key}' if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(node, (list, tuple)):
        out = {}
        for i, value in enumerate(node):
            out.update(_flatten(value, f'{prefix}.{i}'))
        return out or {prefix: type(node)()}
    return {prefix: node}


def config_diff(child: Config, parent: Config) -> set[str]:
    """Dotted leaf keys whose value differs, or that exist on one side only."""
    a, b = _flatten(child.to_dict()), _flatten(parent.to_dict())
    return {k for k in a.keys() | b.keys() if a.get(k, KeyError) != b.get(k, KeyError)}


def _parent(path: Path) -> Path:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_base_' for t in node.targets):
            bases = ast.literal_eval(node.value)
            return (path.parent / (bases[0] if isinstance(bases, list) else bases)).resolve()
    raise AssertionError(f'{path} has no _base_')


def test_every_ablation_declares_its_switches():
    assert sorted(_ids(ABLATIONS)) == sorted(f'ablations/{k}' for k in INTENDED)


@pytest.mark.parametrize('path', ABLATIONS, ids=_ids(ABLATIONS))
def test_ablation_differs_from_its_parent_in_exactly_the_intended_switches(path):
    parent_name, switches = INTENDED[str(path.relative_to(CONFIGS / 'ablations'))]
    parent = _parent(path)
    assert parent.name == parent_name
    diff = config_diff(Config.fromfile(str(path)), Config.fromfile(str(parent)))
    outside = sorted(k for k in diff if not any(k == s or k.startswith(s + '.') for s in switches))
    assert not outside, f'{path.name} also changes {outside}'
    unchanged = [s for s in switches if not any(k == s or k.startswith(s + '.') for k in diff)]
    assert not unchanged, f'{path.name} does not change {unchanged}'


@pytest.mark.parametrize('path', ABLATIONS, ids=_ids(ABLATIONS))
def test_ablation_changes_nothing_outside_the_model_and_the_reranker(path):
    # the same schedule, validation interval, checkpoint selection and data as the parent: an
    # ablation row changes one switch of the model (or, for a reranker row, the reranker)
    diff = config_diff(Config.fromfile(str(path)), Config.fromfile(str(_parent(path))))
    outside = sorted(k for k in diff if not (k.startswith('model.') or k.startswith('test_cfg.reranker')))
    assert not outside, f'{path.name} changes {outside} outside the model'


def test_config_diff_sees_a_nested_change():
    parent = Config(dict(model=dict(backbone=dict(type='Gswin', depths=(1, 1)), itm=dict(type='ITMLoss'))))
    child = Config(dict(model=dict(backbone=dict(type='Gswin', depths=(1, 2)), itm=None)))
    assert config_diff(child, parent) == {'model.backbone.depths.1', 'model.itm', 'model.itm.type'}


# ---------------------------------------------------- datasets against real annotations
requires_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason='../shared/data is absent')
UCM = SHARED_DATA / 'ucm_captions'
SYDNEY = SHARED_DATA / 'captions_only' / 'sydney_captions'
RSITMD = SHARED_DATA / 'captions_only' / 'rsitmd'

# config -> (where the annotations are in ../shared/data, expected images per split)
REAL = {
    'cmpagl_ucm.py': (dict(data_root=str(UCM)), dict(train=1680, val=210, test=210)),
    'cmpagl_ucm_precomp.py': (dict(data_root=str(UCM)), dict(train=1470, val=210, test=210)),
    'cmpagl_sydney.py': (
        dict(data_root=str(SYDNEY), ann_file='dataset_sydney.json', check_images=False),
        dict(train=497, val=58, test=58),
    ),
    'cmpagl_sydney_precomp.py': (
        dict(data_root=str(SYDNEY), ann_file='precomp', check_images=False),
        dict(train=439, val=58, test=58),
    ),
    'cmpagl_rsitmd.py': (
        dict(data_root=str(RSITMD), ann_file='precomp', ann_format='precomp', check_images=False),
        dict(train=3987, val=300, test=452),  # 300 held out of 4,291; 4 have only empty captions
    ),
    'cmpagl_rsitmd_val-on-test.py': (
        dict(data_root=str(RSITMD), ann_file='precomp', ann_format='precomp', check_images=False),
        dict(train=4287, val=452, test=452),
    ),
}


@requires_shared
@pytest.mark.parametrize('name', sorted(REAL))
def test_dataset_definitions_read_the_real_annotations(name):
    where, counts = REAL[name]
    cfg = Config.fromfile(str(CONFIGS / name))
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val'), ('test_dataloader', 'test')):
        dataset = dict(cfg[loader].dataset.to_dict(), **where, pipeline=[])
        ds = DATASETS.build(dataset)
        assert ds.metainfo['num_images'] == counts[split], (loader, ds.metainfo)
        assert len(ds.captions) >= 5 * counts[split] - 20  # RSITMD drops its empty captions


def test_table_vii_compares_the_standard_swin_and_gcvit():
    # the standard models at their usual depths (DESIGN §2.2), not Gswin's 1-1-3-1 layout
    swin = Config.fromfile(str(CONFIGS / 'ablations/backbones/swin_itc-mlm-itm-triplet_rsitmd.py')).model.backbone
    assert (swin.type, tuple(swin.depths), swin.window_size, swin.embed_dim) == ('Swin', (2, 2, 6, 2), 8, 96)
    gcvit = Config.fromfile(str(CONFIGS / 'ablations/backbones/gcvit_itc-mlm-itm-triplet_rsitmd.py')).model.backbone
    assert (gcvit.type, tuple(gcvit.depths), gcvit.embed_dim) == ('GCViT', (2, 2, 6, 2), 64)


def _splits_read(dataset: dict) -> list[tuple]:
    """``(data_root, ann_file, split, holdout)`` of a dataset config, or of each dataset it combines."""
    parts = dataset.get('datasets') or [dataset]
    return [(d.get('data_root'), d.get('ann_file'), d.get('split'), d.get('holdout')) for d in parts]


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=_ids(ALL_CONFIGS))
def test_model_selection_never_reads_the_test_split_unless_labelled(path):
    cfg = Config.fromfile(str(path))
    val = _splits_read(cfg.val_dataloader.dataset.to_dict())
    test = _splits_read(cfg.test_dataloader.dataset.to_dict())
    # a combined validation set reads the test split when any of its parts does
    same = any(part in test for part in val)
    if same or any(split == 'test' for _, _, split, _ in val):
        assert 'val-on-test' in path.name, f'{path.name} selects its checkpoint on the test split'
        assert cfg.test_cfg.get('label'), f'{path.name} must label its test results (test_cfg.label)'
    else:
        assert 'val-on-test' not in path.name
