"""A training step never waits for the device.

On the ``meta`` device tensors have shapes but no values: every operation that
would make the host wait for a GPU (``.item()``, ``bool(tensor)``, ``nonzero``,
boolean-mask indexing, a device tensor in Python control flow) raises there.
Host-side work (tokenisation, MLM masking, the ITM check on host copies of the
ids) runs on real CPU tensors, so the step runs through exactly when none of
its device work reads a value back.
"""

import pytest
import torch
from helpers import TINY_BERT, tiny_cmpagl

from rsretrieval.registry import MODELS

STD_MI = dict(
    fusion_head=dict(type='StandardFusion', num_layers=2, config=TINY_BERT), itc=None, triplet=None, queue_size=0
)
SWIN = dict(backbone=dict(type='Swin', img_size=64, window_size=4, embed_dim=8, depths=(1, 1), num_heads=(1, 2)))


def _meta_step(model, n: int = 4, size: int = 64) -> dict:
    model.train().to('meta')
    batch = dict(
        inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8) for _ in range(n)],
        data_samples=dict(
            caption=[f'{c} planes near {n} white buildings' for c in ('two', 'three', 'four', 'five')][:n],
            image_id=list(range(n)),
            caption_id=list(range(n)),
            sample_idx=list(range(n)),
        ),
    )
    data = model.data_preprocessor(batch, True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    sum(losses.values()).backward()
    return losses


@pytest.mark.parametrize(
    'overrides', [dict(), STD_MI, SWIN, dict(queue_size=0)], ids=['cmpagl', 'std-mi', 'swin', 'no-queue']
)
def test_cmpagl_training_step_never_reads_the_device(overrides):
    torch.manual_seed(0)
    losses = _meta_step(MODELS.build(tiny_cmpagl(**overrides)))
    assert losses and all(v.device.type == 'meta' and v.dim() == 0 for v in losses.values())


def test_the_meta_check_catches_a_host_read():
    model = MODELS.build(tiny_cmpagl())
    model.train().to('meta')
    ids = torch.ones(2, 5, dtype=torch.long, device='meta')
    with pytest.raises((RuntimeError, NotImplementedError)):  # transformers' 2-D mask path asks for mask.all()
        model.text_encoder.bert(input_ids=ids, attention_mask=torch.ones_like(ids))
    with pytest.raises((RuntimeError, NotImplementedError)):
        model.itm_loss.draw(torch.zeros(2, 2, device='meta'), torch.eye(2, dtype=torch.bool, device='meta'))
