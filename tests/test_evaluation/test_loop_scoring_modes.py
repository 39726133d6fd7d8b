"""The test loop through each scoring the plan picks: the same metrics whichever way the scores are held."""

import pytest
from helpers import tiny_runner_cfg
from mmengine.runner import Runner

from rsretrieval.engine.loops import retrieval_loops
from rsretrieval.engine.loops.scoring import Scoring, score_pairs


def _run_test_loop(tmp_path, demo_root, monkeypatch, name, **test_cfg):
    """The test loop's metrics and the scoring it picked."""
    picked = []

    def recording(scoring, *args, **kwargs):
        picked.append(scoring)
        return score_pairs(scoring, *args, **kwargs)

    monkeypatch.setattr(retrieval_loops, 'score_pairs', recording)
    cfg = tiny_runner_cfg(str(tmp_path / name), str(demo_root))
    cfg['test_cfg'] = dict(cfg['test_cfg'], **test_cfg)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    return metrics, picked


@pytest.mark.parametrize('reranker', [None, dict(type='SMR', topk=5)])
def test_each_scoring_gives_the_metrics_of_the_full_matrices(tmp_path, demo_root, monkeypatch, reranker):
    lean, lean_picked = _run_test_loop(tmp_path, demo_root, monkeypatch, 'lean', reranker=reranker)
    full, full_picked = _run_test_loop(tmp_path, demo_root, monkeypatch, 'full', reranker=reranker, full_matrix=True)
    assert lean_picked == [Scoring.BLOCKWISE if reranker is None else Scoring.CANDIDATES]
    assert full_picked == [Scoring.DENSE]
    assert lean == full  # every key, to the last digit (with SMR: the raw/ keys too)
    assert ('raw/mR' in lean) == (reranker is not None)
