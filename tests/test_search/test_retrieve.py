"""Archive search end to end: index a folder with a tiny checkpoint, search it, resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from rsretrieval.apis import embed_texts, init_model, iter_image_embeddings
from rsretrieval.search import ArchiveIndex, find_images

CONFIG = str(REPO / 'configs' / 'cmpagl_demo.py')


def _retrieve(*args):
    proc = subprocess.run(
        [sys.executable, 'tools/retrieve.py', *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_index_then_search_returns_the_planted_image_first(tmp_path, demo_root, tiny):
    ckpt, cli, options = tiny
    model = init_model(CONFIG, ckpt, cfg_options=options)
    sources = sorted((demo_root / 'images').glob('*.png'))
    query = 'three red planes at the top left of farmland'
    # the source image the model matches best with the query is planted deep in the tree as a TIFF
    emb = torch.cat([e for _, e in iter_image_embeddings(model, [str(p) for p in sources])])
    best = int((emb @ embed_texts(model, [query]).T).argmax())
    archive = tmp_path / 'archive'
    for i, src in enumerate(sources):
        image = Image.open(src)
        if i == best:
            (archive / 'deep' / 'nested').mkdir(parents=True, exist_ok=True)
            image.save(archive / 'deep' / 'nested' / 'planted.tif')
        else:  # distractors in lossless formats, some grayscale
            folder = archive / f'set{i % 3}'
            folder.mkdir(parents=True, exist_ok=True)
            (image.convert('L') if i % 4 == 0 else image).save(folder / f'img{i}.{"png" if i % 2 else "tiff"}')
    (archive / 'notes.txt').write_text('not an image')
    assert len(find_images(archive)) == len(sources)

    index_dir = tmp_path / 'index'
    out = _retrieve('index', CONFIG, ckpt, archive, index_dir, '--ann', 'hnsw', '--batch-size', '4', *cli)
    assert f'{len(sources)} images, 16-d, faiss hnsw' in out
    for backend in ('exact', 'faiss'):
        out = _retrieve('search', index_dir, query, '--topk', '3', '--backend', backend,
                        '--json', tmp_path / f'{backend}.json')  # fmt: skip
        hits = json.loads((tmp_path / f'{backend}.json').read_text())[0]['results']
        assert hits[0]['item'].endswith('deep/nested/planted.tif'), (backend, hits)
        assert hits[0]['rank'] == 1 and '| 1 |' in out and 'planted.tif' in out
    # the scores are the model's cosine similarities
    direct = embed_texts(model, [query]) @ torch.from_numpy(ArchiveIndex(index_dir).embeddings()).T
    assert hits[0]['score'] == pytest.approx(float(direct.max()), abs=1e-5)


def test_index_files_are_not_pickles(tmp_path, demo_root, tiny):
    ckpt, cli, _ = tiny
    index_dir = tmp_path / 'index'
    _retrieve('index', CONFIG, ckpt, demo_root / 'images', index_dir, '--ann', 'flat', *cli)
    files = sorted(index_dir.iterdir())
    assert {f.suffix for f in files} == {'.json', '.npy', '.faiss'}
    for f in files:
        assert not f.read_bytes().startswith(b'\x80'), f'{f.name} looks like a pickle'
        if f.suffix == '.npy':
            assert np.load(f, allow_pickle=False).dtype == np.float32
        elif f.suffix == '.json':
            json.loads(f.read_text())
    import faiss

    assert faiss.read_index(str(index_dir / 'ann.faiss')).ntotal == len(find_images(demo_root / 'images'))


def test_indexing_resumes_and_adds_new_images(tmp_path, demo_root, tiny):
    ckpt, cli, _ = tiny
    archive = tmp_path / 'archive'
    shutil.copytree(demo_root / 'images', archive)
    total = len(find_images(archive))
    index_dir = tmp_path / 'index'
    args = ['index', CONFIG, ckpt, archive, index_dir, '--shard-size', '5', *cli]
    _retrieve(*args)
    full = ArchiveIndex(index_dir)
    paths, emb = full.paths(), full.embeddings().copy()
    # an interruption after the first shard: the later shards are missing
    for shard in sorted(index_dir.glob('shard_*'))[2:]:
        shard.unlink()
    out = _retrieve(*args)
    assert f'{total} images under {archive}: 5 already indexed, {total - 5} to encode' in out
    resumed = ArchiveIndex(index_dir)
    assert resumed.paths() == paths and np.allclose(resumed.embeddings(), emb, atol=1e-6)
    shutil.copy(archive / Path(paths[0]), archive / 'new_image.png')
    out = _retrieve(*args)
    assert f'{total} already indexed, 1 to encode' in out and len(ArchiveIndex(index_dir)) == total + 1


def test_search_refuses_another_checkpoint(tmp_path, demo_root, tiny):
    ckpt, cli, _ = tiny
    index_dir = tmp_path / 'index'
    _retrieve('index', CONFIG, ckpt, demo_root / 'images', index_dir, *cli)
    other = tmp_path / 'other.pth'
    state = torch.load(ckpt, weights_only=True)
    state['state_dict']['image_proj.weight'] += 1
    torch.save(state, other)
    proc = subprocess.run(
        [sys.executable, 'tools/retrieve.py', 'search', str(index_dir), 'a query', '--checkpoint', str(other)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0 and 'is not the checkpoint' in proc.stderr


def test_image_to_text_search_and_outputs(tmp_path, demo_root, tiny):
    ckpt, cli, _ = tiny
    data = json.loads((demo_root / 'dataset_demo.json').read_text())
    entry = data['images'][0]
    captions = [s['raw'] for e in data['images'][:6] for s in e['sentences']]
    (tmp_path / 'caps.txt').write_text('\n'.join(captions) + '\n')
    image = demo_root / 'images' / entry['filename']
    html = tmp_path / 'page.html'
    out = _retrieve('search-image', CONFIG, ckpt, image, '--captions', tmp_path / 'caps.txt', '--topk', '4',
                    '--html', html, '--json', tmp_path / 'r.json', *cli)  # fmt: skip
    hits = json.loads((tmp_path / 'r.json').read_text())[0]['results']
    assert len(hits) == 4 and all(h['item'] in captions for h in hits)
    assert [h['score'] for h in hits] == sorted((h['score'] for h in hits), reverse=True)
    assert html.read_text().count('<tr>') == 4 and 'data:image/jpeg;base64,' in html.read_text()
    assert hits[0]['item'] in out
    (tmp_path / 'bad.txt').write_text('a caption\n\nanother\n')
    proc = subprocess.run(
        [sys.executable, 'tools/retrieve.py', 'search-image', CONFIG, str(ckpt), str(image), '--captions',
         str(tmp_path / 'bad.txt'), *cli],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0 and 'bad.txt:2: empty line' in proc.stderr


def test_search_grid_png_has_the_expected_size(tmp_path, demo_root, tiny):
    ckpt, cli, _ = tiny
    index_dir = tmp_path / 'index'
    _retrieve('index', CONFIG, ckpt, demo_root / 'images', index_dir, *cli)
    grid = tmp_path / 'grid.png'
    _retrieve('search', index_dir, 'planes', 'a river', '--topk', '5', '--grid', grid)
    with Image.open(grid) as image:
        assert image.size == (5 * 160, 2 * (160 + 3 * 18))


def test_the_subcommands_are_one_table():
    from rsretrieval.search.cli import COMMANDS, build_parser

    parser = build_parser()
    for command in COMMANDS:
        args = parser.parse_args(_minimal_args(command.name))
        assert args.subcommand is command
    proc = subprocess.run([sys.executable, 'tools/retrieve.py'], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == 'rsretrieval-retrieve: error: choose a command: index, search, search-image, serve'


def _minimal_args(name: str) -> list[str]:
    return {
        'index': ['index', 'c.py', 'k.pth', 'images', 'index_dir'],
        'search': ['search', 'index_dir', 'a query'],
        'search-image': ['search-image', 'c.py', 'k.pth', 'a.png', '--captions', 'c.txt'],
        'serve': ['serve', 'index_dir'],
    }[name]


def test_importing_the_commands_leaves_the_environment_alone():
    code = (
        'import os\n'
        'import cv2, torch\n'  # their own changes (cv2 extends LD_LIBRARY_PATH) are not the library's
        'before = dict(os.environ)\n'
        'import rsretrieval.search.commands, rsretrieval.search.cli, rsretrieval.weights.cli\n'
        'assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ('HF_HUB_OFFLINE', 'RSRETRIEVAL_OFFLINE')}
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_console_entry_point_is_installed():
    script = Path(sys.executable).parent / 'rsretrieval-retrieve'
    assert script.is_file(), 'reinstall the package (make install) to create the console script'
    proc = subprocess.run([str(script), 'search', '--help'], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and '--backend' in proc.stdout
