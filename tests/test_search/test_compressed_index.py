"""The compressed (IVF-PQ) archive index: built and searched from memory-mapped shards, never all in RAM."""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path

import numpy as np
import pytest

from rsretrieval.search import ArchiveIndex, compressed_index
from rsretrieval.search import server as search_server
from rsretrieval.search.choices import ANN_AUTO_THRESHOLD, IVFPQ_AUTO_THRESHOLD, ann_kind
from rsretrieval.search.compressed_index import (
    MAX_BYTES_PER_IMAGE,
    ShardVectors,
    build_ivfpq,
    bytes_per_image,
    ivfpq_params,
    ivfpq_search,
    search_parameters,
)

DIM = 64
SHARDS = (6000, 5000, 4000, 3000, 2000)  # 20,000 images in shards of unequal sizes


def clustered(n: int, seed: int, centres: int = 200) -> np.ndarray:
    """Unit vectors around ``centres`` random centres (shared by every seed), noise decaying across dimensions."""
    spectrum = np.arange(1, DIM + 1, dtype=np.float32) ** -0.5
    spectrum /= np.linalg.norm(spectrum)
    mean = np.random.default_rng(0).standard_normal((centres, DIM), dtype=np.float32) * spectrum
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    x = mean[rng.integers(0, centres, n)] + 0.8 * rng.standard_normal((n, DIM), dtype=np.float32) * spectrum
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_index(folder: Path) -> ArchiveIndex:
    index = ArchiveIndex.create(folder, folder, DIM, dict(checkpoint_sha256='x'))
    for s, n in enumerate(SHARDS):
        index.add([f'{s}/{i}.jpg' for i in range(n)], clustered(n, seed=s + 1))
    return index


@pytest.fixture(scope='module', autouse=True)
def one_faiss_thread():
    """faiss's OpenMP threads spin-wait on a busy machine: one thread keeps these small builds fast."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope='module')
def compressed(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp('ivfpq')
    make_index(folder).build_ann('ivfpq')
    return folder


@pytest.fixture(scope='module')
def queries() -> np.ndarray:
    return clustered(100, seed=99)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))


@pytest.fixture
def no_full_load(monkeypatch):
    """Fail if anything reads every embedding into memory."""

    def refuse(self):
        raise AssertionError('embeddings() loaded every float32 embedding')

    monkeypatch.setattr(ArchiveIndex, 'embeddings', refuse)


def test_ivfpq_recall_against_exact_search_and_reranking_helps(compressed, queries):
    index = ArchiveIndex(compressed)
    _, truth = index.search(queries, 10, 'exact')
    _, reranked = index.search(queries, 10, 'faiss')
    _, codes_only = index.search(queries, 10, 'faiss', rerank=0)
    assert recall_at_10(reranked, truth) >= 0.9
    assert recall_at_10(reranked, truth) >= recall_at_10(codes_only, truth)
    assert recall_at_10(codes_only, truth) >= 0.3  # 16-byte codes of 64-d vectors: approximate


def test_reranked_scores_are_exact_cosines_best_first(compressed, queries):
    index = ArchiveIndex(compressed)
    scores, ids = index.search(queries[:5], 10, 'faiss')
    vectors = index.vectors()
    for q in range(5):
        np.testing.assert_allclose(scores[q], vectors.take(ids[q]) @ queries[q], rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(scores[q]) <= 0)


def test_ivfpq_parameters_are_recorded_in_meta(compressed):
    info = ArchiveIndex(compressed).ann_info
    expected = ivfpq_params(sum(SHARDS), DIM)
    assert info == dict(kind='ivfpq', **expected, bytes_per_image=bytes_per_image(expected))
    assert info['bytes_per_image'] <= MAX_BYTES_PER_IMAGE
    assert ArchiveIndex(compressed).ann().ntotal == sum(SHARDS)


def test_search_len_and_prepare_never_load_all_embeddings(compressed, queries, no_full_load):
    index = ArchiveIndex(compressed)
    assert len(index) == sum(SHARDS)
    assert index.prepare('auto') == sum(SHARDS)
    scores, ids = index.search(queries[:3], 10)
    assert ids.shape == (3, 10) and np.all(ids >= 0)


def test_server_warm_up_of_a_compressed_index_never_loads_all_embeddings(compressed, queries, no_full_load):
    searcher = search_server.Searcher(ArchiveIndex(compressed), lambda texts: queries[:1])
    hits = searcher.search('anything', 5)
    assert [h['rank'] for h in hits] == [1, 2, 3, 4, 5]


def test_building_ivfpq_never_loads_all_embeddings(tmp_path, no_full_load):
    index = make_index(tmp_path)
    index.build_ann('ivfpq')
    assert index.ann().ntotal == sum(SHARDS)


def test_threads_searching_one_index_get_the_serial_results_and_leave_it_unchanged(compressed, queries):
    index = ArchiveIndex(compressed)
    serial = [index.search(queries[q : q + 1], 10, 'faiss', nprobe=3)[1] for q in range(40)]
    nprobe = index.ann().nprobe if hasattr(index.ann(), 'nprobe') else None
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda q: index.search(queries[q : q + 1], 10, 'faiss', nprobe=3)[1], range(40)))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded))
    assert (index.ann().nprobe if hasattr(index.ann(), 'nprobe') else None) == nprobe
    assert search_parameters(index.ann(), 3).nprobe == 3


def test_more_lists_probed_find_more_true_neighbours(compressed, queries):
    index = ArchiveIndex(compressed)
    _, truth = index.search(queries, 10, 'exact')
    one = recall_at_10(index.search(queries, 10, 'faiss', nprobe=1)[1], truth)
    many = recall_at_10(index.search(queries, 10, 'faiss', nprobe=64)[1], truth)
    assert many > one


def test_adding_a_shard_drops_the_compressed_index_and_a_rebuild_covers_it(tmp_path):
    index = make_index(tmp_path)
    index.build_ann('ivfpq')
    assert index.has_ann and index.search_backend('auto') == 'faiss'
    index.add(['late.jpg'], clustered(1, seed=7))
    assert not index.has_ann and index.ann_info is None and len(index) == sum(SHARDS) + 1
    assert index.search_backend('auto') == 'exact'
    index.build_ann('ivfpq')
    reopened = ArchiveIndex(tmp_path)
    assert reopened.ann().ntotal == len(reopened) == sum(SHARDS) + 1
    assert reopened.ann_info['nlist'] == ivfpq_params(sum(SHARDS) + 1, DIM)['nlist']


def test_an_hnsw_coarse_quantizer_is_searched_with_per_call_parameters(queries):
    vectors = ShardVectors([clustered(3000, seed=1), clustered(2000, seed=2)])
    params = dict(ivfpq_params(len(vectors), DIM), quantizer='hnsw')
    ann = build_ivfpq(vectors, params)
    assert search_parameters(ann, 8).quantizer_params is not None
    scores, ids = ivfpq_search(ann, queries[:4], 5, 32, 200, vectors)
    exact = np.sort(queries[:4] @ np.concatenate(vectors.arrays).T, axis=1)[:, ::-1][:, :5]
    assert np.all(ids >= 0) and np.mean(np.isclose(scores, exact, atol=1e-5)) >= 0.7


def test_shard_vectors_read_rows_across_shards_in_any_order():
    arrays = [np.arange(i * 10, i * 10 + n * 2, dtype=np.float32).reshape(n, 2) for i, n in enumerate((3, 1, 4))]
    vectors = ShardVectors(arrays)
    whole = np.concatenate(arrays)
    ids = np.array([7, 0, 3, 4, 2, 3])
    assert len(vectors) == 8
    np.testing.assert_array_equal(vectors.take(ids), whole[ids])
    np.testing.assert_array_equal(vectors.sample(100), whole)
    assert len(np.unique(vectors.sample(5, seed=1), axis=0)) == 5


class _ReadRecorder(np.ndarray):
    """An array that records which threads read rows from it."""

    threads: set

    def __getitem__(self, index):
        self.threads.add(threading.current_thread().name)
        return super().__getitem__(index)


def _recorded_shards():
    arrays = [clustered(n, seed=i) for i, n in enumerate((3000, 1000, 2500))]
    threads = set()
    readers = []
    for a in arrays:
        readers.append(a.view(_ReadRecorder))
        readers[-1].threads = threads
    return ShardVectors(readers), np.concatenate(arrays), threads


def test_rows_slow_to_read_are_read_by_several_threads_with_the_same_result(monkeypatch):
    monkeypatch.setattr(compressed_index, 'DISK_READ_SECONDS', 0.0)  # every read counts as a disk read
    vectors, whole, threads = _recorded_shards()
    ids = np.random.default_rng(0).choice(len(whole), 300, replace=False)
    np.testing.assert_array_equal(vectors.take(ids), whole[ids])
    assert len({t for t in threads if t.startswith('shard-reader')}) > 1
    threads.clear()
    np.testing.assert_array_equal(vectors.take(ids[:10]), whole[ids[:10]])
    assert threads == {threading.current_thread().name}, 'a few rows are read where they are asked for'


def test_rows_from_the_page_cache_are_read_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(compressed_index, 'DISK_READ_SECONDS', 1.0)
    vectors, whole, threads = _recorded_shards()
    ids = np.random.default_rng(0).choice(len(whole), 300, replace=False)
    np.testing.assert_array_equal(vectors.take(ids), whole[ids])
    assert threads == {threading.current_thread().name}
    assert len(vectors.take(np.array([], np.int64))) == 0


def test_ann_auto_picks_exact_then_hnsw_then_ivfpq_by_size():
    assert ann_kind('auto', ANN_AUTO_THRESHOLD - 1) == 'none'
    assert ann_kind('auto', ANN_AUTO_THRESHOLD) == 'hnsw'
    assert ann_kind('auto', IVFPQ_AUTO_THRESHOLD - 1) == 'hnsw'
    assert ann_kind('auto', IVFPQ_AUTO_THRESHOLD) == 'ivfpq'
    assert ann_kind('auto', 100_000_000) == 'ivfpq'
    assert ann_kind('ivfpq', 10) == 'ivfpq'


@pytest.mark.parametrize('images', [1, 100, 20_000, 1_000_000, 10_000_000, 100_000_000])
@pytest.mark.parametrize('dim', [256, 512, 100, 255, 3, 1])
def test_ivfpq_parameters_fit_the_memory_budget_at_every_size(images, dim):
    params = ivfpq_params(images, dim)
    assert bytes_per_image(params) <= MAX_BYTES_PER_IMAGE and dim % params['pq_m'] == 0
    assert params['pq_bytes'] == (params['pq_m'] + 1) // 2 and (dim == 1 or dim // params['pq_m'] >= 2)
    assert 1 <= params['nlist'] <= max(images // 39, 1) and params['nlist'] & (params['nlist'] - 1) == 0
    assert 1 <= params['nprobe'] <= params['nlist']
    assert params['nlist'] <= params['train_size'] <= images
