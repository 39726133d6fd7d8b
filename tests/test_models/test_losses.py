"""Each loss against values computed by hand on tiny tensors."""

import math

import pytest
import torch
import torch.nn.functional as F

from rsretrieval.registry import LOSSES


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


# Three pairs; pairs 0 and 1 show the same image (id 7), pair 2 another (id 9).
IMG = _unit([1.0, 0.0], [1.0, 0.0], [0.0, 1.0])
TXT = _unit([1.0, 0.0], [0.6, 0.8], [0.8, 0.6])
IDS = torch.tensor([7, 7, 9])
# S = IMG @ TXT.T = [[1, .6, .8], [1, .6, .8], [0, .8, .6]]


def test_triplet_by_hand_with_same_image_masking():
    loss = LOSSES.build(dict(type='OptimizedTripletLoss', margin=0.2, reduction='sum'))
    # Negatives are only across images: (0,2), (1,2), (2,0), (2,1).
    # i2t, anchor image i, negative text j: [a - S_ii + S_ij]+
    #   (0,2): .2 - 1 + .8 = 0 ; (1,2): .2 - .6 + .8 = .4 ; (2,0): .2 - .6 + 0 = 0 ; (2,1): .2 - .6 + .8 = .4
    # t2i, anchor text j, negative image i: [a - S_jj + S_ij]+
    #   text 2 vs images 0, 1: .2 - .6 + .8 = .4 twice ; text 0 vs image 2: .2 - 1 + 0 = 0 ;
    #   text 1 vs image 2: .2 - .6 + .8 = .4
    # intra: (1 - 1) + (1 - .6) + (1 - .6) = .8
    expected = (0.4 + 0.4) + (0.4 + 0.4 + 0.4) + 0.8
    assert loss(IMG, TXT, IDS).item() == pytest.approx(expected, abs=1e-5)
    classic = LOSSES.build(dict(type='OptimizedTripletLoss', intra_weight=0.0, reduction='sum'))
    assert classic(IMG, TXT, IDS).item() == pytest.approx(expected - 0.8, abs=1e-5)
    mean = LOSSES.build(dict(type='OptimizedTripletLoss', reduction='mean'))
    assert mean(IMG, TXT, IDS).item() == pytest.approx(expected / 3, abs=1e-5)
    default = LOSSES.build(dict(type='OptimizedTripletLoss'))  # Eq. 19 as written: a sum
    assert default(IMG, TXT, IDS).item() == pytest.approx(expected, abs=1e-5)


def test_triplet_hardest_negative():
    loss = LOSSES.build(dict(type='OptimizedTripletLoss', hardest=True, intra_weight=0.0, reduction='sum'))
    # i2t: max per image row over negatives: image0 0, image1 .4, image2 max(0, .4) = .4
    # t2i: max per text column: text0 0, text1 .4, text2 .4
    assert loss(IMG, TXT, IDS).item() == pytest.approx(0.8 + 0.8, abs=1e-5)


def test_itc_in_batch_with_shared_image_positives():
    loss = LOSSES.build(dict(type='ITCLoss', temperature=0.5, learnable_temperature=False))
    S = IMG @ TXT.T / 0.5
    pos = (IDS[:, None] == IDS[None]).float()
    target = pos / pos.sum(1, keepdim=True)
    i2t = -(F.log_softmax(S, 1) * target).sum(1).mean()
    t2i = -(F.log_softmax(S.T, 1) * target).sum(1).mean()
    assert loss(IMG, TXT, IDS).item() == pytest.approx(((i2t + t2i) / 2).item(), abs=1e-6)
    # By hand for image 0: targets 1/2 on texts 0 and 1; logits 2, 1.2, 1.6.
    lse = math.log(math.exp(2) + math.exp(1.2) + math.exp(1.6))
    assert -(F.log_softmax(S, 1)[0] * target[0]).sum().item() == pytest.approx(lse - (2 + 1.2) / 2, abs=1e-6)


def test_itc_queue_positives_and_distillation():
    loss = LOSSES.build(dict(type='ITCLoss', temperature=0.5, learnable_temperature=False))
    with pytest.raises(ValueError, match='outside temp_range'):
        LOSSES.build(dict(type='ITCLoss', temperature=1.0))
    queue_img, queue_txt = _unit([0.0, 1.0]), _unit([1.0, 0.0])
    keys_img, keys_txt = torch.cat([IMG, queue_img]), torch.cat([TXT, queue_txt])
    # The queued pair belongs to image 9: it is a positive of pair 2, a negative of pairs 0 and 1.
    key_ids = torch.cat([IDS, torch.tensor([9])])
    got = loss(IMG, TXT, IDS, keys_img, keys_txt, key_ids)
    pos = (IDS[:, None] == key_ids[None]).float()
    assert pos[2].tolist() == [0, 0, 1, 1] and pos[0].tolist() == [1, 1, 0, 0]
    target = pos / pos.sum(1, keepdim=True)
    i2t = -(F.log_softmax(IMG @ keys_txt.T / 0.5, 1) * target).sum(1).mean()
    t2i = -(F.log_softmax(TXT @ keys_img.T / 0.5, 1) * target).sum(1).mean()
    assert got.item() == pytest.approx(((i2t + t2i) / 2).item(), abs=1e-6)
    # alpha = 1: the targets are the momentum model's own softmax.
    distilled = loss(IMG, TXT, IDS, keys_img, keys_txt, key_ids, img_emb_m=IMG, txt_emb_m=TXT, alpha=1.0)
    logits_i2t, logits_t2i = IMG @ keys_txt.T / 0.5, TXT @ keys_img.T / 0.5
    i2t_soft = -(F.log_softmax(logits_i2t, 1) * F.softmax(logits_i2t, 1)).sum(1).mean()
    t2i_soft = -(F.log_softmax(logits_t2i, 1) * F.softmax(logits_t2i, 1)).sum(1).mean()
    assert distilled.item() == pytest.approx(((i2t_soft + t2i_soft) / 2).item(), abs=1e-6)


def test_itm_never_samples_a_positive():
    itm = LOSSES.build(dict(type='ITMLoss'))
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    # Similarities that strongly favour the positives: sampling must still avoid them.
    sims = (ids[:, None] == ids[None]).float() * 50
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        neg_txt, neg_img = itm.sample_negatives(sims, ids, g)
        assert (ids[neg_txt] != ids).all() and (ids[neg_img] != ids).all()
    with pytest.raises(ValueError, match='same image'):
        itm.sample_negatives(torch.zeros(2, 2), torch.tensor([5, 5]))
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    labels = torch.tensor([1, 0])
    expected = -(F.log_softmax(logits, 1)[0, 1] + F.log_softmax(logits, 1)[1, 0]) / 2
    assert itm(logits, labels).item() == pytest.approx(expected.item(), abs=1e-6)


def test_itm_sampling_follows_hardness():
    itm = LOSSES.build(dict(type='ITMLoss'))
    ids = torch.arange(3)
    sims = torch.tensor([[0.0, 9.0, -9.0], [9.0, 0.0, -9.0], [9.0, -9.0, 0.0]])
    neg_txt, _ = itm.sample_negatives(sims, ids, torch.Generator().manual_seed(0))
    assert neg_txt.tolist() == [1, 0, 0]


def test_itm_excludes_identical_captions():
    itm = LOSSES.build(dict(type='ITMLoss'))
    ids = torch.arange(4)
    # captions 0 and 1 are the same text: neither may be the other's negative
    same_text = torch.eye(4, dtype=torch.bool)
    same_text[0, 1] = same_text[1, 0] = True
    sims = torch.zeros(4, 4)
    sims[0, 1] = sims[1, 0] = 50.0  # the hardest candidates are exactly the excluded ones
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        neg_txt, neg_img = itm.sample_negatives(sims, ids, g, same_text=same_text)
        assert neg_txt[0] not in (0, 1) and neg_txt[1] not in (0, 1)
        assert neg_img[0] not in (0, 1) and neg_img[1] not in (0, 1)
    with pytest.raises(ValueError, match='same caption'):
        itm.sample_negatives(torch.zeros(2, 2), torch.arange(2), same_text=torch.ones(2, 2, dtype=torch.bool))


def test_itm_hard_fraction_mixes_uniform_negatives():
    ids = torch.arange(4)
    sims = torch.full((4, 4), -50.0)
    sims[:, 3] = 50.0  # caption 3 is every image's hardest negative
    sims[3, 2] = 50.0
    counts = {}
    for fraction in (1.0, 0.0, 0.5):
        itm = LOSSES.build(dict(type='ITMLoss', hard_fraction=fraction))
        g = torch.Generator().manual_seed(0)
        picks = torch.cat([itm.sample_negatives(sims, ids, g)[0][:3] for _ in range(400)])
        counts[fraction] = (picks == 3).float().mean().item()
    assert counts[1.0] == 1.0
    assert counts[0.0] == pytest.approx(1 / 3, abs=0.05)  # uniform over the 3 other captions
    assert counts[0.5] == pytest.approx(0.5 + 0.5 / 3, abs=0.05)
    with pytest.raises(ValueError, match='hard_fraction'):
        LOSSES.build(dict(type='ITMLoss', hard_fraction=1.5))


def test_mlm_masking_rules():
    mlm = LOSSES.build(dict(type='MLMLoss', mask_prob=0.5))
    CLS, SEP, PAD, MASK = 101, 102, 0, 103
    ids = torch.tensor([[CLS] + list(range(1000, 1040)) + [SEP, PAD, PAD]] * 64)
    attn = (ids != PAD).long()
    masked, labels = mlm.mask_tokens(ids, attn, MASK, 30522, (CLS, SEP, PAD), torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, 41].any() and not chosen[:, 42:].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])
    frac = chosen[:, 1:41].float().mean().item()
    assert 0.45 < frac < 0.55
    as_mask = (masked[chosen] == MASK).float().mean().item()
    kept = (masked[chosen] == ids[chosen]).float().mean().item()
    assert 0.75 < as_mask < 0.85 and 0.05 < kept < 0.16  # 10 % kept (+ random draws equal to the original)
    logits = torch.zeros(64, ids.shape[1], 30522)
    assert mlm(logits, labels).item() == pytest.approx(math.log(30522), rel=1e-5)
    assert mlm(logits, torch.full_like(labels, -100)).item() == 0.0


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_losses_stay_float32_under_autocast(dtype):
    """Autocast would run the losses' matmuls and softmaxes in low precision: they must not."""
    from rsretrieval.models.losses import ITCLoss, ITMLoss, MLMLoss, OptimizedTripletLoss

    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(8, 32, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(8, 32, generator=g), dim=-1)
    ids = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])
    logits, labels = torch.randn(8, 2, generator=g), torch.randint(0, 2, (8,), generator=g)
    vocab_logits, vocab_labels = torch.randn(8, 50, generator=g), torch.randint(0, 50, (8,), generator=g)
    cases = [
        (ITCLoss(), (img, txt, ids)),
        (OptimizedTripletLoss(), (img, txt, ids)),
        (ITMLoss(), (logits, labels)),
        (MLMLoss(), (vocab_logits, vocab_labels)),
    ]
    for loss, args in cases:
        reference = loss(*args)
        with torch.autocast('cpu', dtype=dtype):
            low = [a.to(dtype) if a.is_floating_point() else a for a in args]  # what autocast'ed layers emit
            same_inputs, cast_inputs = loss(*args), loss(*low)
        assert same_inputs.dtype == torch.float32 and torch.equal(same_inputs, reference), type(loss).__name__
        exact = loss(*[a.float() if a.is_floating_point() else a for a in low])  # fp32 on the rounded inputs
        assert cast_inputs.dtype == torch.float32 and torch.equal(cast_inputs, exact), type(loss).__name__
