import numpy as np
import pytest
import torch

from rsretrieval.evaluation import chance_recall, format_results_table, load_similarity, recall_at_k, save_similarity

# Two images with two captions each: image 0 -> captions 0, 1; image 1 -> 2, 3.
IMG2TXT = [[0, 1], [2, 3]]
TXT2IMG = [0, 0, 1, 1]


def test_hand_computed_several_captions_per_image():
    sims = np.array(
        [
            [0.1, 0.9, 0.8, 0.2],  # image 0: best is caption 1 (gt) -> rank 0
            [0.7, 0.6, 0.5, 0.1],  # image 1: gt captions 2 (rank 2) and 3 (rank 3) -> rank 2
        ]
    )
    r = recall_at_k(sims, sims, IMG2TXT, TXT2IMG, ks=(1, 2, 3))
    assert r['i2t_R@1'] == 50.0 and r['i2t_R@2'] == 50.0 and r['i2t_R@3'] == 100.0
    # text->image, per column: c0 -> [0.1, 0.7] gt 0 rank 1; c1 -> [0.9, 0.6] gt 0 rank 0;
    # c2 -> [0.8, 0.5] gt 1 rank 1; c3 -> [0.2, 0.1] gt 1 rank 1.
    assert r['t2i_R@1'] == 25.0 and r['t2i_R@2'] == 100.0
    assert r['mR'] == pytest.approx(np.mean([50, 50, 100, 25, 100, 100]))


def test_one_caption_per_image_identity():
    sims = np.eye(4) + 0.01 * np.arange(4)[None]
    r = recall_at_k(sims, sims, [[0], [1], [2], [3]], [0, 1, 2, 3])
    assert all(v == 100.0 for v in r.values())


def test_ties_break_by_index():
    # All scores equal: the lower index ranks first in both directions.
    sims = np.zeros((2, 4))
    r = recall_at_k(sims, sims, IMG2TXT, TXT2IMG, ks=(1, 2, 3))
    # i2t: image 0's caption 0 is first (hit); image 1's best caption 2 is third.
    assert (r['i2t_R@1'], r['i2t_R@2'], r['i2t_R@3']) == (50.0, 50.0, 100.0)
    # t2i: image 0 always first: captions 0, 1 hit at 1, captions 2, 3 at 2.
    assert (r['t2i_R@1'], r['t2i_R@2']) == (50.0, 100.0)
    # A tie with a higher-index item does not push the ground truth down.
    sims = np.array([[0.5, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert recall_at_k(sims, sims, IMG2TXT, TXT2IMG, ks=(1,))['i2t_R@1'] == 50.0


def test_directions_use_their_own_matrix():
    good = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    bad = 1 - good
    r = recall_at_k(good, bad, IMG2TXT, TXT2IMG, ks=(1,))
    assert r['i2t_R@1'] == 100.0 and r['t2i_R@1'] == 0.0


def test_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    sims = rng.normal(size=(7, 20)).astype(np.float32)
    img2txt = [[t for t in range(20) if t % 7 == i] for i in range(7)]
    txt2img = [t % 7 for t in range(20)]
    assert recall_at_k(sims, sims, img2txt, txt2img) == recall_at_k(
        torch.from_numpy(sims), torch.from_numpy(sims), img2txt, txt2img
    )


def test_inconsistent_ground_truth_rejected():
    sims = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r'img2txt\[0\] lists caption 2, but txt2img\[2\] is not 0'):
        recall_at_k(sims, sims, [[0, 2], [1, 3]], TXT2IMG)
    with pytest.raises(ValueError, match='image 1 has no caption'):
        recall_at_k(np.zeros((2, 2)), np.zeros((2, 2)), [[0, 1], []], [0, 0])
    with pytest.raises(ValueError, match='2-D'):
        recall_at_k(np.zeros(3), np.zeros(3), [[0]], [0])


def test_chance_level_matches_random_scores():
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(20)]
    txt2img = [t // 5 for t in range(100)]
    chance = chance_recall(img2txt)
    assert chance['t2i_R@1'] == pytest.approx(5.0)
    assert chance['i2t_R@1'] == pytest.approx(5.0)  # 5 of 100 captions are positives
    rng = np.random.default_rng(0)
    runs = [recall_at_k(s, s, img2txt, txt2img)['mR'] for s in rng.random((200, 20, 100))]
    assert np.mean(runs) == pytest.approx(chance['mR'], abs=1.0)


def test_similarity_roundtrip_without_pickle(tmp_path):
    sims = np.random.default_rng(0).random((2, 4)).astype(np.float32)
    save_similarity(tmp_path / 's.npz', sims, IMG2TXT, TXT2IMG, image_paths=['a', 'b'], captions=list('wxyz'))
    data = load_similarity(tmp_path / 's.npz')
    assert np.array_equal(data['sims'], sims)
    assert data['img2txt'] == IMG2TXT and data['txt2img'] == TXT2IMG
    assert data['image_paths'] == ['a', 'b'] and data['captions'] == list('wxyz')


def test_table_format():
    table = format_results_table({'x': recall_at_k(np.eye(2), np.eye(2), [[0], [1]], [0, 1])})
    assert table.splitlines()[2].startswith('| x | 100.00')


@pytest.mark.parametrize('chunk', [1, 3, 1024])
def test_blockwise_recall_equals_the_full_matrix(chunk):
    from rsretrieval.evaluation import recall_at_k_blockwise

    g = torch.Generator().manual_seed(0)
    img2txt = [[0, 1], [2], [3, 4, 5], [6, 7], [8]]
    txt2img = [i for i, caps in enumerate(img2txt) for _ in caps]
    sims = torch.randint(0, 4, (5, 9), generator=g).float()  # many ties: broken by index in both
    calls = []

    def block(i0, i1, t0, t1):
        calls.append((i1 - i0) * (t1 - t0))
        return sims[i0:i1, t0:t1]

    expected = recall_at_k(sims, sims, img2txt, txt2img, ks=(1, 2, 5))
    assert recall_at_k_blockwise(block, 5, 9, img2txt, txt2img, ks=(1, 2, 5), chunk=chunk) == expected
    assert max(calls) <= chunk * 9  # never more than chunk x max(N_img, N_txt) scores at once
