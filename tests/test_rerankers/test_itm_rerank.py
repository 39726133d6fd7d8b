"""The two-stage ITM reranker and rerankers inside the test loop."""

import numpy as np
import pytest
import torch
from helpers import tiny_cmpagl, tiny_runner_cfg

from rsretrieval.registry import MODELS, RERANKERS

CAPTIONS = ['a plane on the runway', 'two tanks near a road', 'a river crossing a forest', 'houses and a park']


def _features(model):
    torch.manual_seed(0)
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        return model.encode_image_for_matching(images), model.encode_text_for_matching(CAPTIONS)


def test_itm_rerank_rescores_the_top_k_with_the_match_head():
    torch.manual_seed(0)
    model = MODELS.build(tiny_cmpagl()).eval()
    img, txt = _features(model)
    sims = model.similarity(img, txt)  # (3, 4) cosine
    i2t, t2i = RERANKERS.build(dict(type='ITMRerank', topk=2))(sims, model=model, image_feats=img, text_feats=txt)
    with torch.no_grad():
        for q in range(3):  # image queries: the two best captions get their match probability
            top = torch.sort(sims[q], descending=True, stable=True).indices[:2]
            expected = model.match_scores(img, txt, torch.full((2,), q), top)
            assert torch.allclose(i2t[q, top], expected, atol=1e-6)
            rest = [c for c in range(4) if c not in top.tolist()]
            assert (i2t[q, rest] < i2t[q, top].min()).all()
        for t in range(4):  # caption queries
            top = torch.sort(sims[:, t], descending=True, stable=True).indices[:2]
            expected = model.match_scores(img, txt, top, torch.full((2,), t))
            assert torch.allclose(t2i[top, t], expected, atol=1e-6)


def test_itm_rerank_needs_the_model_and_a_match_head():
    sims = np.random.default_rng(0).uniform(size=(3, 4))
    with pytest.raises(ValueError, match='needs the model'):
        RERANKERS.build(dict(type='ITMRerank'))(sims)
    with pytest.raises(TypeError, match='only the similarity matrix'):
        RERANKERS.build(dict(type='SMR'))(sims, model=object())
    model = MODELS.build(tiny_cmpagl(fusion_head=None, itm=None, mlm=None)).eval()
    img, txt = _features(model)
    with pytest.raises(NotImplementedError, match='no fusion head'):
        itm = RERANKERS.build(dict(type='ITMRerank'))
        itm(model.similarity(img, txt), model=model, image_feats=img, text_feats=txt)


@pytest.mark.parametrize('reranker', [dict(type='SMR', topk=5), dict(type='ITMRerank', topk=3)])
def test_test_loop_reports_raw_and_reranked(tmp_path, demo_root, reranker):
    from mmengine.runner import Runner

    cfg = tiny_runner_cfg(str(tmp_path), str(demo_root))
    model = tiny_cmpagl()
    model['backbone'] = dict(model['backbone'], img_size=32)
    cfg['model'] = model
    cfg['test_cfg'] = dict(cfg['test_cfg'], reranker=reranker, out_file=str(tmp_path / 'sims.npz'))
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert {'mR', 'raw/mR', 'i2t_R@1', 'raw/i2t_R@1'} <= set(metrics)
    from rsretrieval.evaluation import load_similarity, recall_at_k

    saved = load_similarity(tmp_path / 'sims.npz')
    raw = recall_at_k(saved['sims'], saved['sims'], saved['img2txt'], saved['txt2img'])
    reranked = recall_at_k(saved['sims_i2t'], saved['sims_t2i'], saved['img2txt'], saved['txt2img'])
    assert raw['mR'] == pytest.approx(metrics['raw/mR']) and reranked['mR'] == pytest.approx(metrics['mR'])
