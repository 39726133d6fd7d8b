"""Fusion heads start their MLM head from the pretrained checkpoint when it has one."""

import pytest
import torch
from helpers import TINY_BERT
from transformers import BertConfig, BertForMaskedLM, BertModel

from rsretrieval.registry import FUSION_HEADS


@pytest.mark.parametrize('head_type', ['PreAlignedFusion', 'StandardFusion'])
def test_mlm_head_from_a_checkpoint_that_has_one(tmp_path, head_type):
    torch.manual_seed(5)
    pretrained = BertForMaskedLM(BertConfig(**dict(TINY_BERT, num_hidden_layers=2)))
    with torch.no_grad():
        pretrained.cls.predictions.bias.uniform_(-1, 1)  # a trained head has a bias of its own
    pretrained.save_pretrained(tmp_path / 'bert_mlm')
    torch.manual_seed(0)
    head = FUSION_HEADS.build(dict(type=head_type, image_width=16, num_layers=2, pretrained=str(tmp_path / 'bert_mlm')))
    ours, theirs = head.mlm_head.predictions, pretrained.cls.predictions
    assert torch.equal(ours.transform.dense.weight, theirs.transform.dense.weight)
    assert torch.equal(ours.transform.LayerNorm.bias, theirs.transform.LayerNorm.bias)
    assert torch.equal(ours.bias, theirs.bias)
    assert ours.decoder.bias is ours.bias  # still one parameter


def test_mlm_head_stays_random_without_one(tmp_path):
    torch.manual_seed(5)
    BertModel(BertConfig(**TINY_BERT), add_pooling_layer=False).save_pretrained(tmp_path / 'bert_plain')
    torch.manual_seed(0)
    head = FUSION_HEADS.build(
        dict(type='PreAlignedFusion', image_width=16, num_layers=1, pretrained=str(tmp_path / 'bert_plain'))
    )
    assert not head._load_mlm_head(str(tmp_path / 'bert_plain'))
    assert torch.all(head.mlm_head.predictions.bias == 0)  # HF's initialisation


def test_packaged_minilm_has_no_mlm_head():
    from rsretrieval.weights.pretrained import read_pretrained_tensors, resolve_pretrained

    assert read_pretrained_tensors(resolve_pretrained('minilm-l6'), 'cls.predictions.') == {}
