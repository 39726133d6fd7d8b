"""A saved similarity file says which reranker produced it, in JSON text read without pickle."""

import json

import numpy as np
import pytest
import torch

from rsretrieval.evaluation import DenseScores, load_similarity, save_scores, save_similarity
from rsretrieval.evaluation.similarity_io import reranker_record
from rsretrieval.registry import RERANKERS

IMG2TXT = [[0, 1], [2, 3], [4]]
TXT2IMG = [0, 0, 1, 1, 2]


def _sims() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).random((3, 5)).astype(np.float32))


def _reranked(cfg: dict, path) -> dict:
    sims, reranker = _sims(), RERANKERS.build(cfg)
    i2t, t2i = reranker(sims)
    record = reranker_record(cfg, reranker)
    save_scores(path, DenseScores(sims, i2t, t2i, reranked=True), IMG2TXT, TXT2IMG, reranker=record)
    return record


def test_the_reranker_type_and_every_argument_are_recorded(tmp_path):
    _reranked(dict(type='SMR', topk=3, gamma2=1.5), tmp_path / 'smr.npz')
    with np.load(tmp_path / 'smr.npz', allow_pickle=False) as data:  # plain text: no pickle, no rsretrieval
        stored = json.loads(str(data['reranker']))
    expected = dict(type='SMR', topk=3, gamma1=0.9, gamma2=1.5, multiply_sim=True, chunk_elements=1 << 25)
    assert stored == expected  # the defaults the config left out are written too
    assert load_similarity(tmp_path / 'smr.npz')['reranker'] == expected


@pytest.mark.parametrize(
    ('cfg', 'expected'),
    [
        (dict(type='MR', wp2=0.5), dict(type='MR', topk=30, wp1=1.0, wp2=0.5, min_candidates=10)),
        (dict(type='ITMRerank', topk=4), dict(type='ITMRerank', topk=4, sim_weight=0.0)),
    ],
)
def test_other_rerankers_record_their_own_arguments(cfg, expected):
    record = reranker_record(cfg, RERANKERS.build(cfg))
    assert {k: v for k, v in record.items() if k != 'chunk_elements'} == expected


def test_raw_scores_say_no_reranker_and_old_files_still_load(tmp_path):
    sims = _sims()
    save_scores(tmp_path / 'raw.npz', DenseScores.from_raw(sims), IMG2TXT, TXT2IMG)
    assert load_similarity(tmp_path / 'raw.npz')['reranker'] == {'type': None}

    save_similarity(tmp_path / 'old.npz', sims.numpy(), IMG2TXT, TXT2IMG)  # as files were written before
    old = load_similarity(tmp_path / 'old.npz')
    assert old['reranker'] is None and old['img2txt'] == IMG2TXT and np.array_equal(old['sims'], sims.numpy())


def test_reranked_matrices_of_an_unnamed_reranker_are_not_called_raw(tmp_path):
    sims = _sims()
    save_scores(tmp_path / 'x.npz', DenseScores(sims, sims.flip(1), sims, reranked=True), IMG2TXT, TXT2IMG)
    assert load_similarity(tmp_path / 'x.npz')['reranker'] is None


def test_the_test_loop_records_its_reranker(tmp_path, demo_root):
    from helpers import tiny_runner_cfg
    from mmengine.runner import Runner

    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root))
    reranker = dict(type='SMR', topk=5, gamma1=1.2)
    cfg['test_cfg'] = dict(cfg['test_cfg'], reranker=reranker, out_file=str(tmp_path / 'sims.npz'))
    Runner.from_cfg(cfg).test()
    saved = load_similarity(tmp_path / 'sims.npz')['reranker']
    assert saved == dict(type='SMR', topk=5, gamma1=1.2, gamma2=1.9, multiply_sim=True, chunk_elements=1 << 25)
