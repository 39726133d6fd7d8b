"""CLIP-family encoders (open_clip): token contracts, open_clip's similarities exactly, checkpoint
formats and mismatches, fine-tuning losses, mixed pairings, and zero-shot evaluation through the
Runner with SMR, offline. Every model is a small open_clip architecture with random weights."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO
from helpers import tiny_cmpagl, tiny_runner_cfg

from rsretrieval.registry import BACKBONES, MODELS, TEXT_ENCODERS
from rsretrieval.utils import CheckpointError, load_model_weights

open_clip = pytest.importorskip('open_clip')

from rsretrieval.models.utils.open_clip_weights import (  # noqa: E402
    build_open_clip,
    describe_open_clip_checkpoint,
    matching_architectures,
    read_open_clip_state_dict,
)

# ViT-B-32's layout at toy widths: 32 px images, patch 8 (16 patches), embedding 16
TINY = dict(
    embed_dim=16,
    vision_cfg=dict(image_size=32, patch_size=8, width=32, head_width=16, layers=2),
    text_cfg=dict(width=32, heads=2, layers=2),
)
TINY_RN = dict(embed_dim=16, vision_cfg=dict(image_size=64, width=8, head_width=8), text_cfg=dict(width=32, heads=2))
CAPTIONS = ['a plane on the runway', 'two ships moored in a harbour near the old dock', 'farmland!', 'a road']


def _reference(arch: str = 'ViT-B-32', model_cfg: dict = TINY, seed: int = 0) -> torch.nn.Module:
    """The open_clip model itself, random weights moved off their initial values (so that a
    swapped norm or bias shows), in eval mode."""
    torch.manual_seed(seed)
    model = build_open_clip(arch, model_cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith('running_var'):
                b.uniform_(0.5, 1.5)
            elif name.endswith('running_mean'):
                b.normal_(0, 0.1)
    return model.eval()


def _vision(arch: str = 'ViT-B-32', model_cfg: dict = TINY, **kwargs) -> dict:
    return dict(type='OpenCLIPVision', arch=arch, model_cfg=model_cfg, **kwargs)


def _text(arch: str = 'ViT-B-32', model_cfg: dict = TINY, **kwargs) -> dict:
    return dict(type='OpenCLIPText', arch=arch, model_cfg=model_cfg, **kwargs)


def _clip_cfg(arch: str = 'ViT-B-32', model_cfg: dict = TINY, **kwargs) -> dict:
    return dict(
        type='CLIPRetriever',
        backbone=_vision(arch, model_cfg),
        text_encoder=_text(arch, model_cfg),
        **kwargs,
    )


def _open_clip_sims(ref, images, captions) -> torch.Tensor:
    tokens = open_clip.get_tokenizer('ViT-B-32')(captions)
    with torch.no_grad():
        img = F.normalize(ref.encode_image(images), dim=-1)
        txt = F.normalize(ref.encode_text(tokens), dim=-1)
    return img @ txt.T


# --------------------------------------------------------------------------- contracts
def test_vit_tokens_start_with_clips_image_embedding(tmp_path):
    ref = _reference()
    torch.save(ref.state_dict(), tmp_path / 'clip.pt')
    backbone = BACKBONES.build(_vision(pretrained=tmp_path / 'clip.pt'))
    backbone.init_weights()
    backbone.eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        tokens = backbone(images)
        embedding = ref.encode_image(images)
        ref.visual.output_tokens = True
        pooled, patches = ref.visual(images)
    assert backbone.out_channels == 16 and backbone.image_size == (32, 32)
    assert tokens.shape == (3, 1 + 16, 16)  # the CLIP embedding, then 4 x 4 projected patch tokens
    torch.testing.assert_close(tokens[:, 0], embedding)
    torch.testing.assert_close(tokens[:, 1:], patches @ ref.visual.proj)
    assert backbone.preprocess_cfg['size'] in (32, (32, 32)) and backbone.preprocess_cfg['interpolation'] == 'bicubic'
    assert backbone.mean_255 == pytest.approx(tuple(255 * m for m in open_clip.OPENAI_DATASET_MEAN))


def test_resnet_tokens_are_the_attention_pools_outputs(tmp_path):
    ref = _reference('RN50', TINY_RN)
    torch.save(ref.state_dict(), tmp_path / 'rn.pt')
    backbone = BACKBONES.build(_vision('RN50', TINY_RN, pretrained=tmp_path / 'rn.pt'))
    backbone.init_weights()
    backbone.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens = backbone(images)
    assert backbone.kind == 'resnet' and tokens.shape == (2, 1 + 2 * 2, 16)  # 64 px / 32 = 2 x 2 positions
    torch.testing.assert_close(tokens[:, 0], ref.encode_image(images).detach())
    assert not torch.allclose(tokens[:, 1], tokens[:, 2])


def test_text_tokens_put_clips_text_embedding_first(tmp_path):
    ref = _reference()
    torch.save(ref.state_dict(), tmp_path / 'clip.pt')
    text = TEXT_ENCODERS.build(_text(pretrained=tmp_path / 'clip.pt'))
    text.init_weights()
    text.eval()
    batch = text.tokenize(CAPTIONS)
    ids, mask = batch['input_ids'], batch['attention_mask']
    reference_ids = open_clip.get_tokenizer('ViT-B-32')(CAPTIONS)  # (4, 77)
    length = ids.shape[1]
    assert length == int(mask.sum(1).max()) < 77
    assert torch.equal(ids, reference_ids[:, :length]) and not reference_ids[:, length:].any()
    assert torch.equal(mask, (torch.arange(length) < (reference_ids != 0).sum(1, keepdim=True)).long())
    with torch.no_grad():
        tokens = text(ids, mask)
        expected = ref.encode_text(reference_ids)
    assert text.out_channels == 16 and tokens.shape == (4, length, 16)
    torch.testing.assert_close(tokens[:, 0], expected, atol=1e-5, rtol=1e-5)
    # a caption's embedding does not depend on the batch it is padded in
    with torch.no_grad():
        alone = text(**text.tokenize(CAPTIONS[2:3]))[:, 0]
        full = text(**text.tokenize(CAPTIONS[2:3], pad_to_max_length=True))[:, 0]
    torch.testing.assert_close(alone, tokens[2:3, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full, tokens[2:3, 0], atol=1e-5, rtol=1e-5)
    tok = text.tokenizer
    assert (tok.vocab_size, tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) == (49408, 49406, 49407, 0)
    assert tok.mask_token_id is None and 'farmland' in tok.decode(ids[2].tolist())


def test_tokenizer_truncates_as_open_clip():
    text = TEXT_ENCODERS.build(_text())
    long = ' '.join(['runway'] * 100)
    ids = text.tokenize([long, 'a road'])['input_ids']
    assert ids.shape == (2, 77)
    assert torch.equal(ids, open_clip.get_tokenizer('ViT-B-32')([long, 'a road']))
    short = TEXT_ENCODERS.build(_text(max_length=8))
    row = short.tokenize([long])['input_ids'][0]
    assert row.shape == (8,) and row[-1] == 49407 and row[0] == 49406


# ------------------------------------------------------------------ open_clip, exactly
def test_clip_retriever_reproduces_open_clips_similarities(tmp_path):
    ref = _reference()
    path = tmp_path / 'clip.pt'
    torch.save(ref.state_dict(), path)
    model = MODELS.build(_clip_cfg())
    load_model_weights(model, path)  # tools/test.py's strict loader: the checkpoint is the model's
    model.eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        sims = model.similarity(model.encode_image(images), model.encode_text(CAPTIONS))
    torch.testing.assert_close(sims, _open_clip_sims(ref, images, CAPTIONS), atol=1e-5, rtol=0)
    assert model.logit_scale_value == pytest.approx(ref.logit_scale.item(), abs=1e-6)


def test_state_dict_is_open_clips_and_round_trips(tmp_path):
    model = MODELS.build(_clip_cfg())
    ref = build_open_clip('ViT-B-32', TINY)
    assert set(model.state_dict()) == set(ref.state_dict())  # open_clip's names
    with torch.no_grad():
        model.pre_alignment.itc_loss.temp.fill_(0.0123)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'ft.pth')
    # a fine-tuned checkpoint loads into open_clip as it is, with its trained temperature
    ref.load_state_dict(torch.load(tmp_path / 'ft.pth', weights_only=True)['state_dict'], strict=True)
    assert ref.logit_scale.exp().item() == pytest.approx(1 / 0.0123, rel=1e-6)
    # and back into the model: every tensor, the temperature to the bit
    other = MODELS.build(_clip_cfg())
    load_model_weights(other, tmp_path / 'ft.pth')
    assert other.pre_alignment.itc_loss.temp.item() == model.pre_alignment.itc_loss.temp.item()
    for key, value in model.state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key


@pytest.mark.parametrize('layout', ['plain', 'nested', 'module', 'safetensors'])
def test_open_clip_checkpoint_formats_load(tmp_path, layout):
    ref = _reference()
    state = ref.state_dict()
    path = tmp_path / ('clip.safetensors' if layout == 'safetensors' else 'clip.pt')
    if layout == 'plain':
        torch.save(state, path)
    elif layout == 'nested':  # an open_clip training checkpoint
        torch.save({'epoch': 3, 'name': 'run', 'state_dict': state, 'optimizer': {'state': {}}}, path)
    elif layout == 'module':  # saved from DDP
        torch.save({'state_dict': {f'module.{k}': v for k, v in state.items()}}, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    assert set(read_open_clip_state_dict(path)) == set(state)
    model = MODELS.build(_clip_cfg(pretrained=str(path)))
    model.init_weights()  # both towers and the logit scale, from one file
    model.eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        sims = model.similarity(model.encode_image(images), model.encode_text(CAPTIONS[:3]))
    torch.testing.assert_close(sims, _open_clip_sims(ref, images, CAPTIONS[:3]), atol=1e-5, rtol=0)
    assert model.logit_scale_value == pytest.approx(ref.logit_scale.item(), abs=1e-6)


def test_checkpoint_loading_refuses_unsafe_pickles(tmp_path):
    import argparse

    path = tmp_path / 'unsafe.pt'
    torch.save({'state_dict': {'visual.proj': torch.zeros(1)}, 'args': argparse.Namespace(lr=1)}, path)
    with pytest.raises(CheckpointError, match='allow-list'):
        read_open_clip_state_dict(path)


# ------------------------------------------------------------------------ mismatches
def test_checkpoint_of_another_architecture_fails_in_one_line_naming_both(tmp_path):
    other = build_open_clip('ViT-B-16', dict(TINY, vision_cfg=dict(TINY['vision_cfg'], patch_size=16)))
    torch.save(other.state_dict(), tmp_path / 'b16.pt')
    backbone = BACKBONES.build(_vision(pretrained=tmp_path / 'b16.pt'))
    with pytest.raises(CheckpointError) as err:
        backbone.init_weights()
    message = str(err.value)
    assert '\n' not in message and 'b16.pt' in message and 'ViT-B-32' in message
    assert 'patch 16' in message and 'patch 8' in message  # the checkpoint's and the config's
    wide = build_open_clip('ViT-B-32', dict(TINY, text_cfg=dict(width=64, heads=2, layers=2)))
    torch.save(wide.state_dict(), tmp_path / 'wide.pt')
    text = TEXT_ENCODERS.build(_text(pretrained=tmp_path / 'wide.pt'))
    with pytest.raises(CheckpointError, match=r'width 64.*builds ViT-B-32.*width 32') as err:
        text.init_weights()
    assert '\n' not in str(err.value)


def test_adapt_checkpoint_unwraps_ddp_and_names_both_architectures(tmp_path):
    # what tools/test.py's loader can call before its strict load (CLIPRetriever.adapt_checkpoint)
    model = MODELS.build(_clip_cfg())
    ref = _reference()
    saved = {'state_dict': {f'module.{k}': v for k, v in ref.state_dict().items()}, 'epoch': 2}
    adapted = model.adapt_checkpoint(saved, 'run/epoch_2.pt')
    assert adapted['epoch'] == 2 and set(adapted['state_dict']) == set(model.state_dict())
    model.load_state_dict(adapted['state_dict'], strict=True)
    other = build_open_clip('ViT-B-16', dict(TINY, vision_cfg=dict(TINY['vision_cfg'], patch_size=16)))
    with pytest.raises(CheckpointError, match=r"b16.pt: the checkpoint's image tower is a ViT .*patch 16.*ViT-B-32"):
        model.adapt_checkpoint(other.state_dict(), 'b16.pt')
    # the loader every tool uses calls it: a DDP-prefixed release loads, another architecture is named
    from rsretrieval.utils import load_model_weights

    torch.save(saved, tmp_path / 'epoch_2.pt')
    load_model_weights(MODELS.build(_clip_cfg()), tmp_path / 'epoch_2.pt')
    torch.save(other.state_dict(), tmp_path / 'b16.pt')
    with pytest.raises(CheckpointError, match=r'image tower is a ViT .*patch 16.*ViT-B-32'):
        load_model_weights(MODELS.build(_clip_cfg()), tmp_path / 'b16.pt')


def test_real_sizes_are_named_after_open_clips_architectures():
    assert 'ViT-B-32' in matching_architectures(('ViT', 768, 12, 32, 224, 512), 'image')
    assert 'RN50' in matching_architectures(('ResNet', 64, (3, 4, 6, 3), 224, 1024), 'image')


def test_image_size_and_normalisation_mismatches_fail_clearly():
    backbone = BACKBONES.build(_vision())
    with pytest.raises(ValueError, match=r'takes 32x32 images .* got 64x64') as err:
        backbone(torch.randn(1, 3, 64, 64))
    assert '\n' not in str(err.value)
    with pytest.raises(ValueError, match='trained with mean'):
        MODELS.build(_clip_cfg(data_preprocessor=dict(type='RetrievalDataPreprocessor')))  # ImageNet's mean/std
    with pytest.raises(ValueError, match='unknown open_clip architecture .*ViT-B-32'):
        BACKBONES.build(dict(type='OpenCLIPVision', arch='ViT-B-33'))
    with pytest.raises(ValueError, match='downloaded'):
        BACKBONES.build(dict(type='OpenCLIPVision', arch='hf-hub:org/model'))


# ---------------------------------------------------------------------- fine-tuning
def test_fine_tuning_losses_train_clips_own_towers_and_temperature():
    torch.manual_seed(0)
    cfg = _clip_cfg(triplet=dict(type='OptimizedTripletLoss', reduction='mean'), queue_size=16)
    model = MODELS.build(cfg)
    model.init_weights()
    images = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    batch = dict(inputs=list(images), data_samples=dict(caption=CAPTIONS, image_id=[0, 1, 2, 3]))
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_itc', 'loss_triplet'}
    sum(losses.values()).backward()
    assert model.pre_alignment.itc_loss.temp.grad is not None
    assert model.backbone.visual.proj.grad is not None and model.text_encoder.text_projection.grad is not None
    assert int(model.pre_alignment.queue.ptr) == 4
    assert isinstance(model.image_proj, torch.nn.Identity)  # no projection on top of CLIP's
    # the momentum copies start as the encoders they follow
    src = model.backbone.visual.proj
    assert torch.equal(model.pre_alignment.momentum_image.module[0].visual.proj, src.detach())


def test_clip_is_a_joint_embedding_retriever_beside_cmpagl():
    from rsretrieval.models.retrievers import CMPAGL, JointEmbeddingRetriever

    model = MODELS.build(_clip_cfg(queue_size=8))
    assert isinstance(model, JointEmbeddingRetriever) and not isinstance(model, CMPAGL)
    assert model.embed_dim == 16 and not any(p.numel() for p in model.image_proj.parameters())
    with pytest.raises(NotImplementedError, match='CLIPRetriever has no match head'):
        model.encode_image_for_matching(torch.zeros(1, 3, 32, 32))


def test_a_clip_checkpoint_with_its_queue_in_the_flat_layout_loads(tmp_path):
    torch.manual_seed(0)
    trained = MODELS.build(_clip_cfg(queue_size=8, distill_alpha=0.2))
    trained.init_weights()
    with torch.no_grad():
        trained.pre_alignment.queue.ptr.fill_(5)
        trained.pre_alignment.momentum_image.module[0].visual.proj.add_(1.0)
    state = trained.state_dict()
    assert 'logit_scale' in state and 'visual.proj' in state  # open_clip's layout, with the component's keys
    flat = {k.removeprefix('pre_alignment.'): v for k, v in state.items()}
    assert {'queue.ptr', 'momentum_image.module.0.visual.proj'} <= set(flat)
    torch.save({'state_dict': flat, 'meta': {}}, tmp_path / 'flat.pth')
    torch.manual_seed(1)
    model = MODELS.build(_clip_cfg(queue_size=8, distill_alpha=0.2))
    load_model_weights(model, tmp_path / 'flat.pth')
    loaded = model.state_dict()
    assert list(loaded) == list(state) and all(torch.equal(loaded[k], v) for k, v in state.items())


def test_a_clip_tower_pairs_with_bert_or_a_timm_backbone():
    torch.manual_seed(0)
    batch = dict(
        inputs=list(torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)),
        data_samples=dict(caption=CAPTIONS, image_id=[0, 1, 2, 3]),
    )
    # CMPAGL (all four losses) with a CLIP image tower in place of Gswin; the fusion encoder
    # cross-attends CLIP's projected tokens
    cmpagl = MODELS.build(tiny_cmpagl(backbone=_vision(), queue_size=8))
    data = cmpagl.data_preprocessor(batch, True)
    losses = cmpagl.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_itc', 'loss_triplet', 'loss_itm', 'loss_mlm'}
    # the reverse: a timm ViT with CLIP's text tower
    dual = MODELS.build(
        dict(
            type='DualEncoderRetriever',
            backbone=dict(type='ViT', img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2),
            text_encoder=_text(),
            embed_dim=8,
        )
    )
    data = dual.data_preprocessor(batch, True)
    assert dual.loss(data['inputs'], data['data_samples'])['loss_itc'].isfinite()
    assert dual.encode_text(CAPTIONS).shape == (4, 8)


# ---------------------------------------------------- zero-shot through the Runner
def test_zero_shot_evaluation_runs_through_the_runner_with_smr_offline(tmp_path, demo_root, monkeypatch):
    from mmengine.runner import Runner

    from rsretrieval.utils import load_checkpoint_into_runner

    attempts = []

    def refuse(*args, **kwargs):  # recorded too: a library may catch the error and go on
        attempts.append(args)
        raise OSError('network access refused by the test')

    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket.socket, 'connect_ex', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)

    ref = _reference()
    path = tmp_path / 'RemoteCLIP-tiny.pt'
    torch.save(ref.state_dict(), path)  # an open_clip state dict, as RemoteCLIP releases
    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root))
    cfg['model'] = _clip_cfg()
    cfg['test_cfg'] = dict(cfg['test_cfg'], reranker=dict(type='SMR', topk=5))
    runner = Runner.from_cfg(cfg)
    load_checkpoint_into_runner(runner, path)  # what tools/test.py CONFIG CKPT does
    metrics = runner.test()
    assert {'mR', 'raw/mR'} <= set(metrics)
    assert 0 <= metrics['raw/mR'] <= 100 and 0 <= metrics['mR'] <= 100
    assert not attempts


def test_describing_a_checkpoint_names_the_architecture(tmp_path):
    state = build_open_clip('ViT-B-32', TINY).state_dict()  # logit scale 1 / 0.07
    torch.save({'state_dict': {f'module.{k}': v for k, v in state.items()}}, tmp_path / 'c.pt')
    out = describe_open_clip_checkpoint(tmp_path / 'c.pt')
    assert 'ViT (width 32, 2 layers, patch 8, 32 px, embed 16)' in out and 'logit scale: 14.29' in out
    assert out.startswith(f'{tmp_path / "c.pt"}: {len(state)} tensors')


# --------------------------------------------------------------------------- configs
CLIP_CONFIGS = sorted((REPO / 'configs' / 'clip').glob('*.py'))


def _leaves(node, prefix=''):
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _leaves(value, f'{prefix}.{key}'.lstrip('.')).items()}
    if isinstance(node, (list, tuple)):
        return {k: v for i, value in enumerate(node) for k, v in _leaves(value, f'{prefix}.{i}').items()}
    return {prefix: node}


@pytest.mark.parametrize('path', CLIP_CONFIGS, ids=[p.name for p in CLIP_CONFIGS])
def test_clip_configs_take_size_and_normalisation_from_the_checkpoints_preprocessing(path):
    from mmengine.config import Config

    from rsretrieval.models.utils.open_clip_weights import image_preprocess_cfg, normalisation_255

    cfg = Config.fromfile(str(path))
    backbone = cfg.model.backbone
    pp = image_preprocess_cfg(backbone.arch, backbone.get('model_cfg'), backbone.get('preprocess_cfg'))
    mean, std = normalisation_255(pp)
    assert tuple(cfg.model.data_preprocessor.mean) == pytest.approx(mean)
    assert tuple(cfg.model.data_preprocessor.std) == pytest.approx(std)
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert (crop.type, crop.size, crop.interpolation) == ('RandomResizedCrop', pp['size'], pp['interpolation'])
    for loader in ('val_dataloader', 'test_dataloader'):
        resize = cfg[loader].dataset.pipeline[1]
        assert (resize.type, tuple(resize.scale), resize.interpolation) == ('Resize', (224, 224), 'bicubic')
    if cfg.model.type == 'CLIPRetriever':
        assert cfg.model.text_encoder.arch == backbone.arch


def test_cmpagl_with_a_clip_image_tower_changes_only_the_backbone_and_what_the_checkpoint_dictates():
    from mmengine.config import Config

    clip = Config.fromfile(str(REPO / 'configs/clip/cmpagl_remoteclip-vit-b-32-image_rsitmd.py')).to_dict()
    gswin = Config.fromfile(str(REPO / 'configs/ablations/components/gswin_itc-mlm-itm-triplet_rsitmd.py')).to_dict()
    a, b = _leaves(clip), _leaves(gswin)
    changed = {k for k in a.keys() | b.keys() if a.get(k, KeyError) != b.get(k, KeyError)}
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    allowed = ('model.backbone', 'model.data_preprocessor', 'clip_', *(f'{x}.dataset.pipeline' for x in loaders))
    assert changed and all(k.startswith(allowed) for k in changed), sorted(changed)
    assert clip['model']['backbone']['type'] == 'OpenCLIPVision' and clip['test_cfg'] == gswin['test_cfg']
