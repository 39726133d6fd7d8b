import pytest
import torch
from helpers import TINY_BERT, tiny_cmpagl

from rsretrieval.registry import FUSION_HEADS, MODELS

CAPTIONS = ['two red planes at the top', 'a blue ship on the left', 'three white tanks in the middle', 'one road']


def _batch(n=4, size=64):
    g = torch.Generator().manual_seed(0)
    return dict(
        inputs=list(torch.randint(0, 255, (n, 3, size, size), dtype=torch.uint8, generator=g)),
        data_samples=dict(caption=CAPTIONS[:n], image_id=list(range(n))),
    )


def _model(**overrides):
    torch.manual_seed(0)
    return MODELS.build(tiny_cmpagl(**overrides))


def test_training_step_returns_the_four_losses():
    model = _model()
    data = model.data_preprocessor(_batch(), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == {'loss_itc', 'loss_triplet', 'loss_itm', 'loss_mlm'}
    sum(losses.values()).backward()
    fusion_grads = [p.grad for n, p in model.named_parameters() if 'crossattention' in n]
    assert fusion_grads and all(g is not None and g.abs().sum() > 0 for g in fusion_grads)


def test_losses_fall_over_20_steps_on_a_fixed_batch():
    model = _model(queue_size=0).eval()  # dropout off for a deterministic check
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    data = model.data_preprocessor(_batch(), True)
    totals = []
    for _ in range(20):
        torch.manual_seed(1)  # the same MLM masks and ITM negatives every step
        losses = model.loss(data['inputs'], data['data_samples'])
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert totals[-1] < 0.7 * totals[0], totals


@pytest.mark.parametrize(
    'switches',
    [
        {},  # the full model
        dict(triplet=None),  # Table III "+ ITM"
        dict(triplet=None, itm=None),  # Table III "Gswin": ITC + MLM
        dict(itm=None, mlm=None, fusion_head=None),
        # Table V/VI "Std-MI": no pre-alignment losses, the match head scores every pair
        dict(
            itc=None,
            triplet=None,
            fusion_head=dict(type='StandardFusion', num_layers=2, config=TINY_BERT),
            retrieval_scores='match_head',
        ),
    ],
    ids=['full', 'no-triplet', 'itc-mlm', 'two-tower', 'std-mi'],
)
def test_every_trainable_parameter_gets_a_gradient(switches):
    # DDP (find_unused_parameters=False) needs this of the full model and of the
    # ablations that drop a loss: heads nothing trains are not built
    torch.manual_seed(0)
    model = MODELS.build(tiny_cmpagl(**switches))
    data = model.data_preprocessor(_batch(), True)
    sum(model.loss(data['inputs'], data['data_samples']).values()).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


def test_heads_without_a_loss_are_not_built():
    model = _model(itm=None)
    assert model.fusion_head.itm_head is None and model.fusion_head.mlm_head is not None
    with pytest.raises(RuntimeError, match='with_match_head=False'):
        model.fusion_head.itm_logits(torch.zeros(1, 3, 32), torch.ones(1, 3), torch.zeros(1, 5, 32))
    model = _model(mlm=None)
    assert model.fusion_head.mlm_head is None and model.fusion_head.itm_head is not None


def test_ablation_switches():
    model = _model(itm=None, mlm=None, fusion_head=None)
    data = model.data_preprocessor(_batch(), True)
    assert set(model.loss(data['inputs'], data['data_samples'])) == {'loss_itc', 'loss_triplet'}
    with pytest.raises(ValueError, match='ITM and MLM need a fusion_head'):
        _model(fusion_head=None)
    with pytest.raises(ValueError, match='at least one'):
        _model(itc=None, triplet=None, itm=None, mlm=None)


def test_inference_never_runs_the_fusion_encoder():
    model = _model().eval()

    def refuse(*args, **kwargs):
        raise AssertionError('fusion encoder called at inference')

    model.fusion_head.register_forward_pre_hook(refuse)
    model.fusion_head.layers.register_forward_pre_hook(refuse)
    data = model.data_preprocessor(_batch(), False)
    with torch.no_grad():
        img = model.encode_image(data['inputs'])
        txt = model.encode_text(CAPTIONS)
        out = model(data['inputs'], data['data_samples'], mode='predict')
    assert model.similarity(img, txt).shape == (4, 4) and out['img_emb'].shape == (4, 16)


def test_momentum_encoders_and_queue():
    model = _model()
    pre = model.pre_alignment
    param_ids = {id(p) for p in model.parameters()}
    assert not any(id(b) in param_ids for b in pre.momentum_image.buffers())
    assert not any(n.startswith(('pre_alignment.momentum', 'pre_alignment.queue')) for n, _ in model.named_parameters())
    # the encoders are the model's submodules only, not the component's
    assert not any(m is model.backbone or m is model.text_encoder for m in pre.modules())
    state = model.state_dict()
    assert 'pre_alignment.momentum_image.module.0.patch_embed.weight' in state and 'pre_alignment.queue.img' in state
    before = pre.momentum_image.module[0].patch_embed.weight.clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    data = model.data_preprocessor(_batch(), True)
    for _ in range(2):  # the EMA step at the start of step 2 sees step 1's update
        opt.zero_grad()
        sum(model.loss(data['inputs'], data['data_samples']).values()).backward()
        opt.step()
    after = pre.momentum_image.module[0].patch_embed.weight
    assert not torch.equal(before, after)
    assert int(pre.queue.ptr) == 8 and (pre.queue.ids[:8] >= 0).all()


def _flat_layout(state: dict) -> dict:
    """A state dict with the pre-alignment's parts at the model's top level (``itc_loss.temp``, ``queue.img``)."""
    return {k.removeprefix('pre_alignment.'): v for k, v in state.items()}


def test_a_checkpoint_in_the_flat_layout_loads_every_tensor(tmp_path):
    from mmengine.runner.checkpoint import load_checkpoint

    from rsretrieval.utils import load_model_weights

    trained = _model()
    with torch.no_grad():
        trained.pre_alignment.itc_loss.temp.fill_(0.05)
        trained.pre_alignment.queue.ptr.fill_(3)
        trained.pre_alignment.momentum_text.module[1].weight.add_(1.0)
    state = trained.state_dict()
    flat = _flat_layout(state)
    assert {'itc_loss.temp', 'queue.ptr', 'momentum_text.module.1.weight'} <= set(flat)
    torch.save({'state_dict': flat, 'meta': {}}, tmp_path / 'flat.pth')
    for load in (
        lambda m: m.load_state_dict(flat, strict=True),
        lambda m: load_checkpoint(m, str(tmp_path / 'flat.pth'), map_location='cpu', strict=True),  # resume
        lambda m: load_model_weights(m, tmp_path / 'flat.pth'),  # tools/test.py, exact
    ):
        torch.manual_seed(1)
        model = MODELS.build(tiny_cmpagl())
        load(model)
        loaded = model.state_dict()
        assert list(loaded) == list(state)
        assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_queue_wraps_around_uneven_batches_and_must_hold_one():
    from rsretrieval.models.utils import FeatureQueue

    queue = FeatureQueue(size=5, dim=2)
    for step, n in enumerate((2, 2, 3)):  # the last batch of an epoch is often smaller
        ids = torch.full((n,), step)
        queue.enqueue(torch.ones(n, 2) * step, torch.ones(n, 2) * step, ids)
    assert queue.ids.tolist() == [2, 2, 1, 1, 2] and int(queue.ptr) == 2
    assert torch.equal(queue.img[4], torch.full((2,), 2.0))
    model = _model(queue_size=3)
    data = model.data_preprocessor(_batch(), True)
    with pytest.raises(ValueError, match='queue size 3 is smaller than the global batch size 4'):
        model.loss(data['inputs'], data['data_samples'])


def test_fusion_is_bidirectional():
    head = FUSION_HEADS.build(dict(type='PreAlignedFusion', image_width=12, num_layers=2, config=TINY_BERT)).eval()
    text, mask, image = torch.randn(1, 6, 32), torch.ones(1, 6, dtype=torch.long), torch.randn(1, 5, 12)
    changed = text.clone()
    changed[0, -1] += 1.0
    with torch.no_grad():
        assert not torch.allclose(head.fuse(text, mask, image)[:, 0], head.fuse(changed, mask, image)[:, 0])
        padded_mask = mask.clone()
        padded_mask[0, -1] = 0
        assert torch.allclose(
            head.fuse(text, padded_mask, image)[:, 0], head.fuse(changed, padded_mask, image)[:, 0], atol=1e-6
        )


def test_itm_pooling_reads_cls_or_the_masked_mean():
    cfg = dict(type='PreAlignedFusion', image_width=12, num_layers=1, config=TINY_BERT)
    text, image = torch.randn(2, 6, 32), torch.randn(2, 5, 12)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    for pooling in ('cls', 'mean'):
        torch.manual_seed(0)
        head = FUSION_HEADS.build(dict(cfg, itm_pooling=pooling)).eval()
        with torch.no_grad():
            fused = head.fuse(text, mask, image)
            expected = fused[:, 0] if pooling == 'cls' else torch.stack([fused[0].mean(0), fused[1, :3].mean(0)])
            assert torch.allclose(head.itm_logits(text, mask, image), head.itm_head(expected), atol=1e-6)
    with pytest.raises(ValueError, match='itm_pooling'):
        FUSION_HEADS.build(dict(cfg, itm_pooling='max'))


def test_fusion_layers_start_from_pretrained_layers():
    from rsretrieval.models.text_encoders import load_bert

    head = FUSION_HEADS.build(dict(type='PreAlignedFusion', image_width=768, num_layers=6, pretrained='minilm-l6'))
    bert = load_bert('minilm-l6')
    for i in (0, 5):
        assert torch.equal(
            head.layers.layers[i].attention.self.query.weight, bert.encoder.layer[i].attention.self.query.weight
        )
    assert head.image_proj.in_features == 768 and head.image_proj.out_features == 384


def test_mlm_decoder_tied_to_word_embeddings():
    model = _model()
    assert model.fusion_head.mlm_head.predictions.decoder.weight is (
        model.text_encoder.bert.embeddings.word_embeddings.weight
    )


STD_MI = dict(
    itc=None,
    triplet=None,
    fusion_head=dict(type='StandardFusion', num_layers=2, config=TINY_BERT),
    retrieval_scores='match_head',
    pair_batch_size=3,
)


def test_standard_fusion_trains_with_itm_and_mlm():
    model = _model(**STD_MI).eval()
    data = model.data_preprocessor(_batch(), True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    totals = []
    for _ in range(20):
        torch.manual_seed(1)
        losses = model.loss(data['inputs'], data['data_samples'])
        assert set(losses) == {'loss_itm', 'loss_mlm'}
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        totals.append(sum(losses.values()).item())
    assert totals[-1] < 0.8 * totals[0], totals  # MLM over a 30k vocabulary dominates and falls slowly
    streams = [n for n, p in model.named_parameters() if 'image_stream' in n and p.grad is not None]
    assert streams


def test_standard_fusion_scores_every_pair_with_the_match_head():
    model = _model(**STD_MI).eval()
    data = model.data_preprocessor(_batch(), False)
    with torch.no_grad():
        img = model.encode_image(data['inputs'])
        txt = model.encode_text(CAPTIONS)
        scores = model.similarity(img, txt)
        assert scores.shape == (4, 4) and ((scores > 0) & (scores < 1)).all()
        # Pair (2, 1) by hand: one fusion pass of image 2 with caption 1.
        logits = model.fusion_head.itm_logits(txt['tokens'][1:2], txt['mask'][1:2], img['tokens'][2:3])
    assert torch.allclose(scores[2, 1], logits.softmax(-1)[0, 1], atol=1e-6)
    assert txt['tokens'].shape[1] == model.text_encoder.max_length  # fixed length: batches concatenate


def test_standard_fusion_needs_an_even_split_and_a_head():
    with pytest.raises(ValueError, match='num_layers must be even'):
        FUSION_HEADS.build(dict(type='StandardFusion', image_width=8, num_layers=3, config=TINY_BERT))
    with pytest.raises(ValueError, match="retrieval_scores='match_head' needs a fusion_head"):
        _model(retrieval_scores='match_head', fusion_head=None, itm=None, mlm=None)


def test_runner_evaluates_standard_fusion_end_to_end(tmp_path, demo_root):
    from helpers import tiny_runner_cfg
    from mmengine.runner import Runner

    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root))
    model = tiny_cmpagl(**STD_MI)
    model['backbone'] = dict(model['backbone'], img_size=32)
    cfg['model'] = model
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert 0 <= metrics['mR'] <= 100
