"""Caption-equivalent recall: its normalisation, its relation, its counts and its ranks, by hand and at random."""

import random

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, requires_shared

from rsretrieval.datasets.text import clean_caption
from rsretrieval.evaluation import (
    BlockwiseScores,
    CandidateScores,
    DenseScores,
    RelevantPairs,
    equivalent_pairs,
    normalise_caption,
    recall_at_k,
    recall_at_k_equivalent,
    shared_captions,
)
from rsretrieval.evaluation.ranking import best_of_pairs, blockwise_pair_ranks, dense_pair_ranks, reranked_pair_ranks
from rsretrieval.registry import DATASETS, RERANKERS


def dense_ranks(sims_i2t, sims_t2i, pairs):
    return best_of_pairs(dense_pair_ranks(sims_i2t, sims_t2i, pairs), pairs)


def blockwise_ranks(score_block, pairs, chunk):
    return best_of_pairs(blockwise_pair_ranks(score_block, pairs, chunk), pairs)


def reranked_ranks(sims, i2t_candidates, t2i_candidates, pairs):
    return best_of_pairs(reranked_pair_ranks(sims, i2t_candidates, t2i_candidates, pairs), pairs)


# Four images. Caption 2 repeats caption 0 (case and a full stop aside) on another image,
# caption 4 repeats caption 1 (white space aside): shared strings in both directions.
CAPTIONS = ['a farm land', 'many green trees', 'A farm land.', 'a river', 'many  green trees', 'a road', 'a beach']
IMG2TXT = [[0, 1], [2, 3], [4, 5], [6]]
TXT2IMG = [0, 0, 1, 1, 2, 2, 3]
SIMS = torch.tensor(
    [  # captions 0 .. 6
        [0.1, 0.2, 0.9, 0.3, 0.0, 0.5, 0.4],  # image 0
        [0.8, 0.1, 0.2, 0.3, 0.7, 0.6, 0.5],  # image 1
        [0.5, 0.5, 0.5, 0.9, 0.5, 0.1, 0.2],  # image 2: four tied captions
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # image 3: all tied
    ]
)


def test_normalisation_equivalent_to_the_datasets_cleaning_and_idempotent():
    raw = ["The Farm's  field.", 'A farm land !', '  many\tgreen trees,', 'Café near 2 roads']
    for text in raw:
        cleaned = clean_caption(text, max_words=1000)
        assert normalise_caption(text) == cleaned
        assert normalise_caption(cleaned) == cleaned  # a dataset's caption is left as it is
        assert normalise_caption(normalise_caption(text)) == normalise_caption(text)
    assert normalise_caption('A farm land.') == normalise_caption('a farm land') == 'a farm land'
    assert normalise_caption('a farm land') != normalise_caption('a farmland')


def test_equivalent_relation_by_hand():
    pairs = equivalent_pairs(CAPTIONS, IMG2TXT, TXT2IMG)
    got = sorted(zip(pairs.images.tolist(), pairs.captions.tolist()))
    expected = [(0, 0), (1, 0), (0, 1), (2, 1), (0, 2), (1, 2), (1, 3), (0, 4), (2, 4), (2, 5), (3, 6)]
    assert got == sorted(expected)
    standard = RelevantPairs.ground_truth(TXT2IMG, len(IMG2TXT))
    assert standard.images.tolist() == TXT2IMG and standard.captions.tolist() == list(range(7))


def test_shared_caption_counts_by_hand():
    shared = shared_captions(CAPTIONS, IMG2TXT, TXT2IMG)
    # 'a farm land' on images 0, 1; 'many green trees' on 0, 2; captions 0, 1, 2, 4; images 0, 1, 2
    assert (shared.strings, shared.text_queries, shared.image_queries) == (2, 4, 3)
    assert (shared.n_img, shared.n_txt) == (4, 7)


def test_equivalent_ranks_and_recall_by_hand_in_both_directions():
    pairs = equivalent_pairs(CAPTIONS, IMG2TXT, TXT2IMG)
    i2t, t2i = dense_ranks(SIMS, SIMS, pairs)
    # image 0: row order c2 c5 c6 c3 c1 c0 c4; own captions c1 (4), c0 (5); c2 (same as c0) first -> 0
    # image 1: c0 c4 c5 c6 c3 c2 c1; own c3 (4), c2 (5); c0 (same as c2) first -> 0
    # image 2: c3, then the tie c0 c1 c2 c4 by index, c6, c5; own c4 (4), c5 (6); c1 (same as c4) -> 2
    # image 3: all tied, c6 last -> 6
    assert i2t.tolist() == [0, 0, 2, 6]
    # caption 0: column order i1 i2 i0 i3; own i0 (2); i1 carries 'a farm land' too -> 0
    # caption 1: i2 i0 i1 i3; own i0 (1); i2 carries 'many green trees' -> 0
    # caption 2: i0 i2 i1 i3; own i1 (2); i0 -> 0
    # caption 3: i2, then i0 and i1 tied at 0.3 (i0 first); own i1 (2), not shared -> 2
    # caption 4: i1 i2 i0 i3 (i0, i3 tied at 0); own i2 (1); i0 is behind it -> 1
    # caption 5: i1 i0 i2 i3 -> 2;  caption 6: i1 i0 i2 i3 -> 3
    assert t2i.tolist() == [0, 0, 0, 2, 1, 2, 3]
    r = recall_at_k_equivalent(SIMS, SIMS, CAPTIONS, IMG2TXT, TXT2IMG, ks=(1, 3, 5))
    assert (r['i2t_R@1'], r['i2t_R@3'], r['i2t_R@5']) == (50.0, 75.0, 75.0)
    assert r['t2i_R@1'] == pytest.approx(300 / 7) and r['t2i_R@3'] == pytest.approx(600 / 7) and r['t2i_R@5'] == 100
    # the standard recall of the same scores: ranks i2t [4, 4, 4, 6], t2i [2, 1, 2, 2, 1, 2, 3]
    s = recall_at_k(SIMS, SIMS, IMG2TXT, TXT2IMG, ks=(1, 3, 5))
    assert (s['i2t_R@1'], s['i2t_R@3'], s['i2t_R@5'], s['t2i_R@1']) == (0.0, 0.0, 75.0, 0.0)
    assert s['t2i_R@3'] == pytest.approx(600 / 7) and s['t2i_R@5'] == 100
    assert r.keys() == s.keys()


def _random_case(rng: random.Random, vocabulary: int):
    """Images with 1-5 captions drawn from ``vocabulary`` strings (small: many shared), integer scores (ties)."""
    n_img = rng.randint(2, 12)
    img2txt, txt2img, captions = [], [], []
    for i in range(n_img):
        n = rng.randint(1, 5)
        img2txt.append(list(range(len(txt2img), len(txt2img) + n)))
        txt2img.extend([i] * n)
        captions.extend(f'caption {rng.randrange(vocabulary)}' for _ in range(n))
    g = torch.Generator().manual_seed(rng.randrange(1 << 30))
    sims = torch.randint(0, 4, (n_img, len(txt2img)), generator=g).float()
    return sims, captions, img2txt, txt2img


def _brute_force_ranks(sims, captions, txt2img):
    """Best ranks by sorting every row and column (stable, descending) and scanning for a right answer."""
    n_img, n_txt = sims.shape
    carriers = {s: {txt2img[t] for t in range(n_txt) if captions[t] == s} for s in set(captions)}
    right_captions = [{t for t in range(n_txt) if i in carriers[captions[t]]} for i in range(n_img)]
    right_images = [carriers[captions[t]] for t in range(n_txt)]

    def first_right(scores, right):
        order = sorted(range(len(scores)), key=lambda j: (-float(scores[j]), j))
        return next(place for place, j in enumerate(order) if j in right)

    i2t = [first_right(sims[i], right_captions[i]) for i in range(n_img)]
    t2i = [first_right(sims[:, t], right_images[t]) for t in range(n_txt)]
    return i2t, t2i


@pytest.mark.parametrize('seed', range(40))
def test_equivalent_ranks_match_a_brute_force_and_never_lose_to_standard(seed):
    rng = random.Random(seed)
    sims, captions, img2txt, txt2img = _random_case(rng, vocabulary=rng.choice([2, 4, 8]))
    i2t, t2i = dense_ranks(sims, sims, equivalent_pairs(captions, img2txt, txt2img))
    assert (i2t.tolist(), t2i.tolist()) == _brute_force_ranks(sims, captions, txt2img)
    equivalent = recall_at_k_equivalent(sims, sims, captions, img2txt, txt2img, ks=(1, 2, 5))
    standard = recall_at_k(sims, sims, img2txt, txt2img, ks=(1, 2, 5))
    assert equivalent.keys() == standard.keys()
    assert all(equivalent[k] >= standard[k] for k in standard), (equivalent, standard)


@pytest.mark.parametrize('seed', range(10))
def test_equivalent_equals_standard_when_no_caption_is_shared(seed):
    rng = random.Random(seed)
    sims, _, img2txt, txt2img = _random_case(rng, vocabulary=1)
    # repeats on one image (RSICD's padding) share nothing across images
    captions = [f'the only caption of image {i}' for i in txt2img]
    assert shared_captions(captions, img2txt, txt2img).strings == 0
    assert recall_at_k_equivalent(sims, sims, captions, img2txt, txt2img) == recall_at_k(sims, sims, img2txt, txt2img)


@pytest.mark.parametrize('seed', range(12))
def test_equivalent_dense_blockwise_and_candidates_agree(seed):
    rng = random.Random(100 + seed)
    sims, captions, img2txt, txt2img = _random_case(rng, vocabulary=3)
    pairs = equivalent_pairs(captions, img2txt, txt2img)
    dense = DenseScores.from_raw(sims).recall_equivalent(captions, img2txt, txt2img)
    assert dense == recall_at_k_equivalent(sims, sims, captions, img2txt, txt2img)
    blockwise = BlockwiseScores(lambda i0, i1, t0, t1: sims[i0:i1, t0:t1], tuple(sims.shape))
    assert blockwise.recall_equivalent(captions, img2txt, txt2img) == dense
    for chunk in (1, 2, 3):  # several blocks each way
        small = blockwise_ranks(blockwise.score_block, pairs, chunk=chunk)
        assert all(torch.equal(a, b) for a, b in zip(small, dense_ranks(sims, sims, pairs)))
    # a top-K reranker: its candidates give what its two reranked matrices give
    topk = min(3, *sims.shape)
    smr = RERANKERS.build(dict(type='SMR', topk=topk))
    (i2t_candidates, _), (t2i_candidates, _) = smr.rerank_candidates(sims)
    reranked = DenseScores(sims, *smr(sims), reranked=True).recall_equivalent(captions, img2txt, txt2img)
    candidates = CandidateScores(sims, i2t_candidates, t2i_candidates)
    assert candidates.recall_equivalent(captions, img2txt, txt2img) == reranked
    assert candidates.raw.recall_equivalent(captions, img2txt, txt2img) == dense
    # both recalls from one ranking: the same numbers as each on its own, for every type
    for scores in (DenseScores.from_raw(sims), blockwise, candidates):
        both = scores.recall_both(captions, img2txt, txt2img)
        assert both == (scores.recall(img2txt, txt2img), scores.recall_equivalent(captions, img2txt, txt2img))


def test_candidates_rank_an_equivalent_target_at_its_reranked_place():
    # each image query's raw top 2 (see SIMS), reordered: image 0's c5, c2 (c2 is equivalent to its c0)
    i2t_candidates = torch.tensor([[5, 2], [4, 0], [0, 3], [1, 0]])
    t2i_candidates = SIMS.T.argsort(dim=1, descending=True, stable=True)[:, :2]  # raw order: nothing moved
    pairs = equivalent_pairs(CAPTIONS, IMG2TXT, TXT2IMG)
    i2t, t2i = reranked_ranks(SIMS, i2t_candidates, t2i_candidates, pairs)
    # image 0: c2 at place 1; image 1: c0 (same as its c2) at place 1; image 2: neither candidate is right
    # (c1, c4, c5 are), raw rank 2; image 3: c6 is no candidate, raw rank 6
    assert i2t.tolist() == [1, 1, 2, 6]
    assert torch.equal(t2i, dense_ranks(SIMS, SIMS, pairs)[1])
    # the standard ranks of the same reranking: no own caption of images 0-2 is a candidate
    standard_i2t, _ = reranked_ranks(SIMS, i2t_candidates, t2i_candidates, RelevantPairs.ground_truth(TXT2IMG, 4))
    assert standard_i2t.tolist() == [4, 4, 4, 6]


def test_equivalent_inputs_are_checked():
    with pytest.raises(ValueError, match='captions has 6 entries, txt2img 7'):
        equivalent_pairs(CAPTIONS[:6], IMG2TXT, TXT2IMG)
    with pytest.raises(ValueError, match=r"caption 3 \('\.\.\.'\) has no letter or digit"):
        shared_captions(CAPTIONS[:3] + ['...'] + CAPTIONS[4:], IMG2TXT, TXT2IMG)
    with pytest.raises(ValueError, match=r'img2txt\[0\] lists caption 2'):
        recall_at_k_equivalent(SIMS, SIMS, CAPTIONS, [[0, 2], [1, 3], [4, 5], [6]], TXT2IMG)
    with pytest.raises(ValueError, match='ground truth has 4 images / 7 captions, the similarity matrix is 3 x 7'):
        recall_at_k_equivalent(SIMS[:3], SIMS[:3], CAPTIONS, IMG2TXT, TXT2IMG)
    with pytest.raises(ValueError, match='image 3 has no relevant pair'):
        RelevantPairs(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), 4, 3)
    with pytest.raises(ValueError, match=r'a pair names caption 3, outside \[0, 3\)'):
        RelevantPairs(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 3]), 3, 3)
    with pytest.raises(ValueError, match='expected'):
        blockwise_ranks(lambda i0, i1, t0, t1: SIMS, equivalent_pairs(CAPTIONS, IMG2TXT, TXT2IMG), chunk=2)


def test_numpy_and_torch_scores_agree_equivalent():
    sims = np.asarray(SIMS)
    assert recall_at_k_equivalent(sims, sims, CAPTIONS, IMG2TXT, TXT2IMG) == recall_at_k_equivalent(
        SIMS, SIMS, CAPTIONS, IMG2TXT, TXT2IMG
    )


@requires_shared
def test_shared_caption_counts_equivalent_of_real_ucm_splits():
    """The counts docs/evaluation.md gives for UCM-Captions (Karpathy JSON)."""
    counts = {}
    for split in ('train', 'val', 'test'):
        ds = DATASETS.build(
            dict(
                type='RSCaptionDataset',
                data_root=str(SHARED_DATA / 'ucm_captions'),
                ann_file='annotations/dataset_ucm.json',
                split=split,
                test_mode=True,
                check_images=False,
            )
        )
        shared = shared_captions(ds.captions, ds.img2txt, ds.txt2img)
        counts[split] = (shared.strings, shared.text_queries, shared.n_txt, shared.image_queries, shared.n_img)
    assert counts == {
        'train': (946, 7648, 8400, 1617, 1680),
        'val': (228, 876, 1050, 189, 210),
        'test': (210, 868, 1050, 192, 210),
    }
