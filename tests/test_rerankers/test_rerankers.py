"""SMR and MR against plain loops written from the formulas (DESIGN §2.6)."""

import math

import numpy as np
import pytest
import torch

from rsretrieval.registry import RERANKERS

# ---------------------------------------------------------------------------
# Reference implementations: one query at a time, straight from the formulas.


def _ranking(scores):
    """Indices by score descending, ties by lower index."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def _rerank_rows_loop(S, score_fn, k):
    """Rows as queries: candidates' new scores from ``score_fn``; the rest below, in order."""
    n_q, n_c = S.shape
    out = np.empty_like(S)
    for q in range(n_q):
        forward = _ranking(S[q])
        top = forward[:k]
        new = {c: score_fn(q, c, j + 1, top) for j, c in enumerate(top)}
        lowest = min(new.values())
        rest = list(forward[k:])
        for c in rest:  # keep their order, all below the candidates
            out[q, c] = S[q, c] - S[q].max() + lowest - 1
        for c, v in new.items():
            out[q, c] = v
    return out


def _backward_place(S, q, c):
    """1-based place of query q in candidate c's ranking of all queries."""
    return _ranking(S[:, c]).index(q) + 1


def smr_loop(S, topk, g1, g2, multiply_sim=True):
    def rows(M):
        n_q, n_c = M.shape
        k = min(topk, n_c)

        def score(q, c, j, top):
            w_f = 1 - j / k
            w_b = 1 - _backward_place(M, q, c) / n_q
            w_d = M[q, c] / M[q].max() + M[q, c] / M[:, c].max()
            w = w_f + g1 * w_b + g2 * w_d
            return w * M[q, c] if multiply_sim else w

        return _rerank_rows_loop(M, score, k)

    return rows(S), rows(S.T).T


def mr_loop(S, topk, wp1, wp2):
    def rows(M):
        n_q, n_c = M.shape
        k = min(max(10, topk), n_c)
        cache = {}

        def score(q, c, r_f, top):
            if q not in cache:
                back = [_backward_place(M, q, t) - 1 for t in top]
                resorted = sorted(range(k), key=lambda j: (back[j], j))
                cache[q] = {top[j]: place + 1 for place, j in enumerate(resorted)}
            r_b = cache[q][c]
            return wp1 * M[q, c] / M[:, c].sum() + math.exp(-0.05 * r_f) + wp2 * math.exp(-0.05 * r_b)

        return _rerank_rows_loop(M, score, k)

    return rows(S), rows(S.T).T


# ---------------------------------------------------------------------------

SHAPES = [(12, 60), (9, 9), (20, 7), (15, 75)]  # 5 captions per image, 1 per image, more images than captions


def _random_sims(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 1.0, size=shape)


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('params', [dict(topk=5, gamma1=0.9, gamma2=1.9), dict(topk=30, gamma1=1.3, gamma2=0.0)])
def test_smr_equals_the_loop(shape, params):
    S = _random_sims(shape, 0)
    i2t, t2i = RERANKERS.build(dict(type='SMR', **params))(S)
    ref_i2t, ref_t2i = smr_loop(S, params['topk'], params['gamma1'], params['gamma2'])
    np.testing.assert_allclose(i2t, ref_i2t, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t2i, ref_t2i, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('shape', SHAPES)
def test_smr_without_sim_equals_the_loop(shape):
    S = _random_sims(shape, 1)
    i2t, t2i = RERANKERS.build(dict(type='SMR', topk=6, multiply_sim=False))(S)
    ref_i2t, ref_t2i = smr_loop(S, 6, 0.9, 1.9, multiply_sim=False)
    np.testing.assert_allclose(i2t, ref_i2t, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t2i, ref_t2i, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('topk', [3, 12])
def test_mr_equals_the_loop(shape, topk):
    S = _random_sims(shape, 2)
    i2t, t2i = RERANKERS.build(dict(type='MR', topk=topk, wp1=1.0, wp2=0.7))(S)
    ref_i2t, ref_t2i = mr_loop(S, topk, 1.0, 0.7)
    np.testing.assert_allclose(i2t, ref_i2t, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t2i, ref_t2i, rtol=1e-9, atol=1e-9)


def test_ties_follow_the_lower_index_like_recall():
    S = np.round(_random_sims((10, 50), 3), 1)  # many exact ties
    i2t, t2i = RERANKERS.build(dict(type='SMR', topk=8))(S)
    ref_i2t, ref_t2i = smr_loop(S, 8, 0.9, 1.9)
    np.testing.assert_allclose(i2t, ref_i2t, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t2i, ref_t2i, rtol=1e-9, atol=1e-9)
    i2t, t2i = RERANKERS.build(dict(type='MR', topk=8))(S)
    ref_i2t, ref_t2i = mr_loop(S, 8, 1.0, 0.7)
    np.testing.assert_allclose(i2t, ref_i2t, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('cfg', [dict(type='SMR', topk=7), dict(type='MR', topk=12)])
def test_only_the_top_k_is_reordered(cfg):
    S = _random_sims((11, 55), 4)
    k = 7 if cfg['type'] == 'SMR' else 12
    i2t, t2i = RERANKERS.build(cfg)(S)
    for raw_rows, new_rows in ((S, i2t), (S.T, t2i.T)):
        for raw, new in zip(raw_rows, new_rows):
            top = set(np.argsort(-raw, kind='stable')[:k])
            new_order = list(np.argsort(-new, kind='stable'))
            assert set(new_order[:k]) == top  # the same candidates stay on top
            rest = list(new_order[k:])
            assert rest == [c for c in np.argsort(-raw, kind='stable') if c not in top]  # rest keeps its order


@pytest.mark.parametrize('cfg', [dict(type='SMR', topk=5), dict(type='MR', topk=5)])
def test_numpy_and_torch_agree_and_keep_type(cfg):
    S = _random_sims((8, 40), 5).astype(np.float32)
    reranker = RERANKERS.build(cfg)
    np_i2t, np_t2i = reranker(S)
    t_i2t, t_t2i = reranker(torch.from_numpy(S))
    assert isinstance(np_i2t, np.ndarray) and np_i2t.dtype == np.float32 and np_i2t.shape == S.shape
    assert isinstance(t_i2t, torch.Tensor) and t_i2t.dtype == torch.float32 and t_t2i.shape == S.shape
    np.testing.assert_array_equal(np_i2t, t_i2t.numpy())
    np.testing.assert_array_equal(np_t2i, t_t2i.numpy())


def test_chunking_does_not_change_the_result():
    S = torch.from_numpy(_random_sims((13, 65), 6))
    whole = RERANKERS.build(dict(type='SMR', topk=9))(S)
    chunked = RERANKERS.build(dict(type='SMR', topk=9, chunk_elements=20))(S)
    for a, b in zip(whole, chunked):
        assert torch.equal(a, b)


def test_no_rerank_is_the_identity():
    S = _random_sims((4, 20), 7)
    i2t, t2i = RERANKERS.build(dict(type='NoRerank'))(S)
    assert i2t is S and t2i is S


def test_bad_input_is_refused():
    smr = RERANKERS.build(dict(type='SMR'))
    with pytest.raises(ValueError, match='N_img, N_txt'):
        smr(np.zeros(5))
    with pytest.raises(ValueError, match='NaN'):
        smr(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match='topk'):
        RERANKERS.build(dict(type='MR', topk=0))


@pytest.mark.parametrize(
    'reranker',
    [dict(type='SMR', topk=7), dict(type='SMR', topk=30, gamma2=0.0), dict(type='SMR', topk=5, multiply_sim=False),
     dict(type='MR', topk=12), dict(type='MR', topk=3)],
    ids=['smr', 'smr-no-ratio', 'smr-no-sim', 'mr', 'mr-min-candidates'],
)  # fmt: skip
@pytest.mark.parametrize('ties', [False, True])
def test_candidates_give_the_metrics_of_the_reranked_matrices(reranker, ties):
    from rsretrieval.evaluation import recall_at_k, recall_at_k_reranked

    g = torch.Generator().manual_seed(3)
    img2txt = [[5 * i + j for j in range(5)] for i in range(30)]
    txt2img = [t // 5 for t in range(150)]
    sims = torch.randint(0, 6, (30, 150), generator=g).float() if ties else torch.randn(30, 150, generator=g)
    r = RERANKERS.build(dict(reranker, chunk_elements=97))  # small chunks: the chunked paths run
    dense = recall_at_k(*r(sims), img2txt, txt2img, ks=(1, 3, 5, 10))
    (i2t, i2t_scores), (t2i, _) = r.rerank_candidates(sims)
    assert i2t.shape == (30, min(max(r.topk, getattr(r, 'min_candidates', 0)), 150)) and t2i.shape[0] == 150
    assert bool((i2t_scores[:, :-1] >= i2t_scores[:, 1:]).all())  # best first
    assert recall_at_k_reranked(sims, i2t, t2i, img2txt, txt2img, ks=(1, 3, 5, 10)) == dense


def test_top_candidates_chunked_equals_whole():
    from rsretrieval.rerankers.ranking import top_candidates

    g = torch.Generator().manual_seed(0)
    sims = torch.randint(0, 4, (23, 40), generator=g).float()
    whole = top_candidates(sims, 6)
    for chunk in (1, 40, 41, 300):
        assert all(torch.equal(a, b) for a, b in zip(top_candidates(sims, 6, chunk), whole))
        assert all(
            torch.equal(a, b) for a, b in zip(top_candidates(sims.T, 6, chunk), top_candidates(sims.T.contiguous(), 6))
        )
