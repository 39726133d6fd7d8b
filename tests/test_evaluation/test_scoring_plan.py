"""The evaluation plan: which scoring each run gets, the typed results, their metric and their saving."""

import numpy as np
import pytest
import torch

from rsretrieval.engine.loops.results_report import results_message, results_rows, timings_message
from rsretrieval.engine.loops.scoring import Scoring, choose_scoring, score_pairs
from rsretrieval.evaluation import (
    BlockwiseScores,
    CandidateScores,
    DenseScores,
    RetrievalRecall,
    chance_recall,
    load_similarity,
    recall_at_k,
    save_scores,
)
from rsretrieval.registry import RERANKERS

IMG2TXT = [[0, 1], [2], [3, 4, 5], [6, 7], [8], [9, 10]]
TXT2IMG = [i for i, caps in enumerate(IMG2TXT) for _ in caps]
KS = (1, 2, 5)

RERANKER_CFGS = {
    'none': None,
    'top_k': dict(type='SMR', topk=3),  # reorders each query's top K: has candidates
    'whole_matrix': dict(type='NoRerank'),  # maps the whole matrix
    'needs_features': dict(type='ITMRerank', topk=2),  # whole matrix, with the match head's inputs
}

D, B, C = Scoring.DENSE, Scoring.BLOCKWISE, Scoring.CANDIDATES
# (reranker, out_file, full_matrix) -> scoring for plain embeddings, scoring for match-head dicts
PLAN_TABLE = [
    ('none', None, None, B, D),
    ('none', None, False, B, D),
    ('none', None, True, D, D),
    ('none', 'sims.npz', None, D, D),
    ('top_k', None, None, C, C),
    ('top_k', None, False, C, C),
    ('top_k', None, True, D, D),
    ('top_k', 'sims.npz', None, D, D),
    ('whole_matrix', None, None, D, D),
    ('whole_matrix', 'sims.npz', True, D, D),
    ('needs_features', None, None, D, D),
    ('needs_features', 'sims.npz', None, D, D),
]


def _reranker(name):
    cfg = RERANKER_CFGS[name]
    return RERANKERS.build(cfg) if cfg else None


@pytest.mark.parametrize('reranker, out_file, full_matrix, plain, dicts', PLAN_TABLE)
def test_plan_decision_table(reranker, out_file, full_matrix, plain, dicts):
    assert choose_scoring(_reranker(reranker), out_file, full_matrix, plain_features=True) is plain
    assert choose_scoring(_reranker(reranker), out_file, full_matrix, plain_features=False) is dicts


@pytest.mark.parametrize('reranker', sorted(RERANKER_CFGS))
@pytest.mark.parametrize('full_matrix', [None, False, True])
@pytest.mark.parametrize('plain_features', [True, False])
def test_a_run_that_saves_always_scores_dense(reranker, full_matrix, plain_features):
    assert choose_scoring(_reranker(reranker), 'sims.npz', full_matrix, plain_features) is Scoring.DENSE


def _sims(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 5, (len(IMG2TXT), len(TXT2IMG)), generator=g).float()  # many ties


def _metric(scores, ks=KS):
    metric = RetrievalRecall(ks=ks, caption_equivalent=False)  # the plan, not the equivalent rows
    metric.process(dict(img2txt=IMG2TXT, txt2img=TXT2IMG), [scores])
    return metric.evaluate(1)


def _blockwise(sims):
    return BlockwiseScores(lambda i0, i1, t0, t1: sims[i0:i1, t0:t1], tuple(sims.shape))


def _raw_top(sims, k_i2t, k_t2i):
    """Each image query's raw top ``k_i2t`` captions and each caption query's top ``k_t2i``
    images, ties by the lower index."""
    i2t = torch.sort(sims, dim=1, descending=True, stable=True).indices[:, :k_i2t]  # (N_img, k_i2t)
    t2i = torch.sort(sims.T, dim=1, descending=True, stable=True).indices[:, :k_t2i]  # (N_txt, k_t2i)
    return i2t, t2i


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_raw_results_of_every_type_give_the_dense_recalls(seed):
    sims = _sims(seed)
    expected = recall_at_k(sims, sims, IMG2TXT, TXT2IMG, KS)
    assert _metric(DenseScores.from_raw(sims)) == expected
    assert _metric(_blockwise(sims)) == expected
    # no candidate moved: each query's candidates are its raw top K in raw order
    assert _metric(CandidateScores(sims, *_raw_top(sims, 3, 3))) == expected


@pytest.mark.parametrize('reranker, topk, seed', [('SMR', 4, 1), ('SMR', 6, 0), ('MR', 3, 0), ('MR', 6, 2)])
def test_candidate_results_give_the_recalls_of_the_reranked_matrices(reranker, topk, seed):
    sims = torch.rand(len(IMG2TXT), len(TXT2IMG), generator=torch.Generator().manual_seed(seed))
    r = RERANKERS.build(dict(type=reranker, topk=topk))
    (i2t, _), (t2i, _) = r.rerank_candidates(sims)
    sims_i2t, sims_t2i = r(sims)
    dense = _metric(DenseScores(sims, sims_i2t, sims_t2i, reranked=True))
    assert _metric(CandidateScores(sims, i2t, t2i)) == dense
    raw_i2t, raw_t2i = _raw_top(sims, i2t.shape[1], t2i.shape[1])
    assert not (torch.equal(i2t, raw_i2t) and torch.equal(t2i, raw_t2i))  # the reranker moved a candidate


def test_raw_view_of_each_result_drops_the_reranker():
    sims = _sims()
    raw = recall_at_k(sims, sims, IMG2TXT, TXT2IMG, KS)
    smr = RERANKERS.build(dict(type='SMR', topk=3))
    (i2t, _), (t2i, _) = smr.rerank_candidates(sims)
    for scores in (DenseScores(sims, *smr(sims), reranked=True), CandidateScores(sims, i2t, t2i), _blockwise(sims)):
        assert scores.shape == (6, 11)
        assert scores.raw.recall(IMG2TXT, TXT2IMG, KS) == raw


def test_metric_takes_only_typed_results():
    with pytest.raises(TypeError, match='RetrievalRecall takes one of DenseScores, BlockwiseScores'):
        _metric(dict(sims_i2t=_sims(), sims_t2i=_sims()))


def test_saving_takes_only_dense_results(tmp_path):
    sims = _sims()
    smr = RERANKERS.build(dict(type='SMR', topk=3))
    (i2t, _), (t2i, _) = smr.rerank_candidates(sims)
    for scores in (_blockwise(sims), CandidateScores(sims, i2t, t2i)):
        with pytest.raises(TypeError, match='only DenseScores hold the matrices'):
            save_scores(tmp_path / 'x.npz', scores, IMG2TXT, TXT2IMG)
    assert not (tmp_path / 'x.npz').exists()

    save_scores(tmp_path / 'raw.npz', DenseScores.from_raw(sims), IMG2TXT, TXT2IMG, captions=list('abcdefghijk'))
    raw = load_similarity(tmp_path / 'raw.npz')
    assert np.array_equal(raw['sims'], sims.numpy()) and 'sims_i2t' not in raw
    assert raw['img2txt'] == IMG2TXT and raw['captions'] == list('abcdefghijk')

    sims_i2t, sims_t2i = smr(sims)
    save_scores(tmp_path / 'smr.npz', DenseScores(sims, sims_i2t, sims_t2i, reranked=True), IMG2TXT, TXT2IMG)
    saved = load_similarity(tmp_path / 'smr.npz')
    assert np.array_equal(saved['sims'], sims.numpy())
    assert np.array_equal(saved['sims_i2t'], sims_i2t.numpy()) and np.array_equal(saved['sims_t2i'], sims_t2i.numpy())


class _EmbeddingModel:
    """What :func:`score_pairs` asks of a model: ``similarity``, and the features a match head would read."""

    def __init__(self):
        self.progress = []

    def similarity(self, img, txt, progress=False):
        self.progress.append(progress)
        if isinstance(img, dict):
            img, txt = img['emb'], txt['emb']
        return img @ txt.T


class _RecordingReranker:
    needs_features = True

    def __call__(self, sims, **context):
        self.context = context
        return sims.flip(1), sims.flip(0)


def test_score_returns_the_planned_type_with_the_same_raw_similarities():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(6, 4, generator=g), torch.randn(11, 4, generator=g)
    model = _EmbeddingModel()
    expected = recall_at_k(img @ txt.T, img @ txt.T, IMG2TXT, TXT2IMG, KS)
    blockwise = score_pairs(Scoring.BLOCKWISE, model, img, txt)
    dense = score_pairs(Scoring.DENSE, model, img, txt, progress=True)
    assert isinstance(blockwise, BlockwiseScores) and isinstance(dense, DenseScores) and not dense.reranked
    assert model.progress == [True]  # the dense matrix is scored at once; blocks only when ranked
    assert blockwise.shape == dense.shape == (6, 11)
    assert _metric(blockwise) == _metric(dense) == expected
    assert model.progress == [True, False, False]  # one block of images, then one of captions

    smr = RERANKERS.build(dict(type='SMR', topk=3))
    candidates = score_pairs(Scoring.CANDIDATES, model, img, txt, smr)
    assert isinstance(candidates, CandidateScores)
    assert _metric(candidates) == _metric(score_pairs(Scoring.DENSE, model, img, txt, smr))


def test_a_reranker_that_needs_features_gets_the_model_and_them():
    img, txt = dict(emb=torch.eye(6, 11)), dict(emb=torch.eye(11))
    model, reranker = _EmbeddingModel(), _RecordingReranker()
    scores = score_pairs(Scoring.DENSE, model, img, txt, reranker)
    assert scores.reranked and torch.equal(scores.sims, torch.eye(6, 11))
    assert torch.equal(scores.sims_i2t, torch.eye(6, 11).flip(1))
    assert reranker.context == dict(model=model, image_feats=img, text_feats=txt)


def test_report_rows_and_lines():
    metrics = recall_at_k(_sims(), _sims(), IMG2TXT, TXT2IMG)
    raw = recall_at_k(_sims(1), _sims(1), IMG2TXT, TXT2IMG)
    rows = results_rows('test', metrics, IMG2TXT)
    assert list(rows) == ['chance', 'test'] and rows['chance'] == chance_recall(IMG2TXT)
    rows = results_rows('val', metrics, IMG2TXT, raw=raw, reranker_name='SMR')
    assert list(rows) == ['chance', 'val (raw)', 'val + SMR']
    assert rows['val (raw)'] is raw and rows['val + SMR'] is metrics
    lines = results_message('val', rows, (6, 11), label='selected on test').splitlines()
    assert lines[0] == 'val retrieval results [selected on test] (6 images, 11 captions):'
    assert len(lines) == 1 + 2 + 3 and lines[-1].startswith('| val + SMR | ')
    timings = dict(images=1.0, captions=0.5, scores=0.25, metrics=0.125, total=2.0)
    assert timings_message('test', timings, 'SMR') == (
        'test time: 2.00 s (images 1.00, captions 0.50, scores + SMR 0.25, metrics 0.12)'
    )
    assert 'scores 0.25,' in timings_message('test', timings)
