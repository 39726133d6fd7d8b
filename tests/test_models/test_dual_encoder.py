import torch
from helpers import tiny_model

from rsretrieval.models.retrievers import BaseRetriever
from rsretrieval.registry import BACKBONES, MODELS, TEXT_ENCODERS


def _batch(n=4, size=32):
    g = torch.Generator().manual_seed(0)
    return dict(
        inputs=list(torch.randint(0, 255, (n, 3, size, size), dtype=torch.uint8, generator=g)),
        data_samples=dict(
            caption=[f'{c} planes on the {s}' for c, s in zip(['two', 'three', 'four', 'five'], 'ab' * 2)][:n],
            image_id=list(range(n)),
        ),
    )


def test_modes_and_shapes():
    torch.manual_seed(0)
    model = MODELS.build(tiny_model(embed_dim=16))
    assert isinstance(model, BaseRetriever)
    data = model.data_preprocessor(_batch(), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == {'loss_itc'} and losses['loss_itc'].ndim == 0
    out = model(data['inputs'], data['data_samples'], mode='predict')
    assert out['img_emb'].shape == (4, 16) and out['txt_emb'].shape == (4, 16)
    assert torch.allclose(out['img_emb'].norm(dim=-1), torch.ones(4))
    assert model.similarity(out['img_emb'], out['txt_emb']).shape == (4, 4)


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    # Dropout off (eval) so the 20 steps are deterministic; gradients flow all the same.
    model = MODELS.build(dict(tiny_model(), text_pooling='mean')).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = _batch()
    batch['data_samples']['caption'] = [
        'two red planes at the top',
        'a blue ship on the left',
        'three white tanks in the middle',
        'farmland with one road',
    ]
    data = model.data_preprocessor(batch, True)
    losses = []
    for _ in range(20):
        loss = model.loss(data['inputs'], data['data_samples'])['loss_itc']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]


def test_mean_pooling_ignores_padding():
    torch.manual_seed(0)
    model = MODELS.build(dict(tiny_model(), text_pooling='mean')).eval()
    with torch.no_grad():
        alone = model.encode_text(['two planes'])
        padded = model.encode_text(['two planes', 'a much longer caption with many more words in it'])[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_init_weights_keeps_pretrained_text_weights():
    enc = TEXT_ENCODERS.build(dict(type='BertTextEncoder', pretrained='minilm-l6', num_layers=2))
    before = enc.bert.encoder.layer[1].output.dense.weight.clone()
    enc.init_weights()
    assert torch.equal(before, enc.bert.encoder.layer[1].output.dense.weight)
    assert len(enc.bert.encoder.layer) == 2 and enc.out_channels == 384
    tokens = enc.tokenize(['two white planes'])
    assert tokens['input_ids'][0, 0].item() == 101  # [CLS] of bert-base-uncased


def test_vit_backbone_contract_and_local_weights(tmp_path):
    cfg = dict(type='ViT', img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    torch.manual_seed(0)
    src = BACKBONES.build(cfg)
    torch.save(src.model.state_dict(), tmp_path / 'vit.pth')
    out = src(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 1 + 16, 32) and src.out_channels == 32
    torch.manual_seed(1)
    dst = BACKBONES.build(dict(cfg, pretrained=str(tmp_path / 'vit.pth')))
    dst.init_weights()
    assert torch.equal(dst.model.patch_embed.proj.weight, src.model.patch_embed.proj.weight)
