"""Momentum encoders equal their sources after any weight loading (DESIGN §2.5)."""

import pytest
import torch
from helpers import TINY_BERT, tiny_cmpagl
from mmengine.runner.checkpoint import load_checkpoint
from transformers import BertConfig, BertModel

from rsretrieval.models.retrievers.pre_alignment import MOMENTUM_COPIES
from rsretrieval.registry import BACKBONES, MODELS


def _momentum_mismatches(model) -> list[str]:
    """Names of momentum tensors that differ from the tensor they copy."""
    bad = []
    for name, tower in MOMENTUM_COPIES.items():
        copy = getattr(model.pre_alignment, name).module
        for i, source in enumerate(model.towers[tower]):
            copied = copy[i].state_dict()
            for key, value in getattr(model, source).state_dict().items():
                if not torch.equal(copied[key], value):
                    bad.append(f'{name}.{i}.{key}')
    return bad


def _bert_folder(tmp_path):
    """A tiny BERT in Hugging Face format, with random weights that differ from a fresh one."""
    torch.manual_seed(7)
    folder = tmp_path / 'tiny_bert'
    BertModel(BertConfig(**TINY_BERT), add_pooling_layer=False).save_pretrained(folder)
    return folder


def test_pretrained_backbone_and_text_encoder_reach_the_momentum_copies(tmp_path):
    cfg = tiny_cmpagl()
    torch.manual_seed(3)
    pretrained = BACKBONES.build(cfg['backbone'])
    torch.save(pretrained.state_dict(), tmp_path / 'gswin.pth')
    cfg['backbone'] = dict(cfg['backbone'], pretrained=str(tmp_path / 'gswin.pth'))
    cfg['text_encoder'] = dict(type='BertTextEncoder', pretrained=str(_bert_folder(tmp_path)), tokenizer='minilm-l6')
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    # built, not yet initialised: the backbone weights load in init_weights(), after the copy is made
    assert not torch.equal(model.backbone.patch_embed.weight, pretrained.patch_embed.weight)
    model.init_weights()
    for key, value in pretrained.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    assert _momentum_mismatches(model) == []
    text_weights = BertModel.from_pretrained(tmp_path / 'tiny_bert').state_dict()
    assert torch.equal(
        model.pre_alignment.momentum_text.module[0].bert.embeddings.word_embeddings.weight,
        text_weights['embeddings.word_embeddings.weight'],
    )


def test_a_checkpoint_without_momentum_copies_fills_them_from_its_encoders(tmp_path):
    torch.manual_seed(0)
    source = MODELS.build(tiny_cmpagl(queue_size=0))  # no momentum encoders in its state dict
    assert not any('momentum_' in k for k in source.state_dict())
    torch.save({'state_dict': source.state_dict(), 'meta': {}}, tmp_path / 'no_momentum.pth')
    torch.manual_seed(1)
    model = MODELS.build(tiny_cmpagl())
    model.init_weights()
    load_checkpoint(model, str(tmp_path / 'no_momentum.pth'), map_location='cpu', strict=False)  # as load_from
    assert torch.equal(model.backbone.patch_embed.weight, source.backbone.patch_embed.weight)
    assert _momentum_mismatches(model) == []
    # torch's own load_state_dict takes the same path (strict: the copies are not missing)
    torch.manual_seed(2)
    other = MODELS.build(tiny_cmpagl())
    other.load_state_dict(source.state_dict(), strict=False)
    assert _momentum_mismatches(other) == []


def test_a_checkpoint_with_momentum_copies_restores_them_as_saved(tmp_path):
    torch.manual_seed(0)
    trained = MODELS.build(tiny_cmpagl())
    trained.init_weights()
    with torch.no_grad():
        trained.pre_alignment.momentum_image.module[0].patch_embed.weight.add_(1.0)  # an EMA state of its own
    state = trained.state_dict()
    torch.manual_seed(1)
    model = MODELS.build(tiny_cmpagl())
    model.load_state_dict(state, strict=True)
    key = 'pre_alignment.momentum_image.module.0.patch_embed.weight'
    assert torch.equal(model.pre_alignment.momentum_image.module[0].patch_embed.weight, state[key])
    assert _momentum_mismatches(model) == ['momentum_image.0.patch_embed.weight']


@pytest.mark.parametrize('alpha', [-0.1, 1.0])
def test_distill_alpha_range(alpha):
    with pytest.raises(ValueError, match='distill_alpha'):
        MODELS.build(tiny_cmpagl(distill_alpha=alpha))


def test_distillation_needs_momentum_encoders():
    with pytest.raises(ValueError, match='needs momentum encoders'):
        MODELS.build(tiny_cmpagl(distill_alpha=0.4, queue_size=0))
