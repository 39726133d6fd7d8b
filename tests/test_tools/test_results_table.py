"""tools/analysis_tools/results_table.py run as a user would: one command, the table and its protocol card."""

from __future__ import annotations

import hashlib
import json
import runpy
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO, SHARED_DATA, requires_shared

TOOL = 'tools/analysis_tools/results_table.py'
DEMO = 'configs/cmpagl_demo.py'


def _sha256(path) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def _run(*args, code=0, timeout=600):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, TOOL, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, time.perf_counter() - start


@pytest.fixture
def best_checkpoint(tmp_path, tiny_demo_checkpoint):
    """The tiny demo model under the name the checkpoint hook gives a best-val-mR checkpoint, and its model spec."""
    ckpt, cfg_options = tiny_demo_checkpoint
    best = tmp_path / 'best_mR_epoch_1.pth'
    shutil.copy(ckpt, best)
    return best, f'tiny=configs/cmpagl_demo.py:{best},' + ','.join(cfg_options[1:])


def test_results_table_and_protocol_card_for_the_demo_checkpoint_on_two_test_sets(tmp_path, demo_root, best_checkpoint):
    best, model = best_checkpoint
    out = tmp_path / 'table'
    proc, _ = _run(
        '--model', model,
        '--test-set', f'demo-test={DEMO},data_root={demo_root}',
        '--test-set', f'demo-val={DEMO},data_root={demo_root},split=val',
        '--rerank', 'smr', '--rerank-options', 'topk=5',
        '--out', str(out),
    )  # fmt: skip
    table = json.loads((out / 'table.json').read_text())
    card = json.loads((out / 'protocol.json').read_text())
    assert table['protocol'] == card
    rows = table['rows']
    assert [(r['model'], r['test_set']) for r in rows] == [('tiny', 'demo-test'), ('tiny', 'demo-val')]
    # one pass with the reranker: reranked keys, raw ones under raw/, caption-equivalent ones under
    # equiv/ and raw/equiv/, each printed in its column
    assert '| mR | mR + SMR | equiv. mR | equiv. mR + SMR | notes |' in proc.stdout
    for row in rows:
        metrics = row['metrics']
        assert {'mR', 'raw/mR', 'i2t_R@1', 'raw/t2i_R@10', 'equiv/mR', 'raw/equiv/mR'} <= set(metrics)
        values = [metrics[f'raw/{k}'] for k in ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10')]
        mean_recalls = (metrics['raw/mR'], metrics['mR'], metrics['raw/equiv/mR'], metrics['equiv/mR'])
        numbers = ' | '.join(f'{v:.2f}' for v in (*values, *mean_recalls))
        assert f'| tiny | {row["test_set"]} | {numbers} |' in proc.stdout
    assert rows[0]['notes'] == [] and rows[1]['notes'] == ['checkpoint selected on this set']
    # the card: test sets with their annotation file's sha256, split and counts
    sets = {t['name']: t for t in card['test_sets']}
    ann = demo_root / 'dataset_demo.json'
    for name, split, images in (('demo-test', 'test', 8), ('demo-val', 'val', 6)):
        [annotations] = sets[name]['annotations']
        assert annotations['files'] == [{'path': str(ann), 'sha256': _sha256(ann)}]
        assert (sets[name]['split'], sets[name]['images'], sets[name]['captions']) == (split, images, 5 * images)
        assert sets[name]['config_sha256'] == _sha256(REPO / DEMO)
        shared = sets[name]['shared_captions']
        assert shared == {k: int(rows[0 if name == 'demo-test' else 1]['metrics'][f'shared/{k}']) for k in shared}
        assert set(shared) == {'caption_strings', 'text_queries', 'image_queries'}
    # the model: config and weights hashed, selected on the val split at epoch 1, trained without exclusions
    [tiny] = card['models']
    assert (tiny['config_sha256'], tiny['weights_sha256']) == (_sha256(REPO / DEMO), _sha256(best))
    assert tiny['selection']['text'] == f'best val mR on {demo_root} (DemoSceneDataset) [split val] (epoch 1)'
    assert tiny['training_data'] == [{'data': f'{demo_root} (DemoSceneDataset) [split train]', 'exclusions': 'none'}]
    assert tiny['precision']['dtype'] in ('float32', 'bfloat16')
    assert card['reranker'] == {'type': 'SMR', 'topk': 5, 'gamma1': 0.9, 'gamma2': 1.9, 'multiply_sim': True,
                                'chunk_elements': card['reranker']['chunk_elements']}  # fmt: skip
    env = card['environment']
    assert env['device'].startswith('CPU ') and env['torch'] and env['rsretrieval']
    assert env['commit'] == 'unknown' or len(env['commit']) == 40
    markdown = (out / 'table.md').read_text()
    assert markdown.startswith('# Results table') and '## Protocol card' in markdown
    assert markdown in proc.stdout + '\n'


def test_results_table_gives_the_numbers_tools_test_gives(tmp_path, demo_root, tiny_demo_checkpoint):
    from rsretrieval.apis import TableModel, evaluate_grid, parse_model_spec, parse_test_set_spec

    ckpt, cfg_options = tiny_demo_checkpoint
    dumped = tmp_path / 'metrics.json'
    subprocess.run(
        [sys.executable, 'tools/test.py', DEMO, str(ckpt), '--work-dir', str(tmp_path / 'work'),
         '--dump-metrics', str(dumped), *cfg_options],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    spec = parse_model_spec(f'tiny={REPO / DEMO}:{ckpt},' + ','.join(cfg_options[1:]))
    model = TableModel(spec.name, spec.config, spec.weights, spec.options, given=str(ckpt))
    test_set = parse_test_set_spec(f'demo={REPO / DEMO},data_root={demo_root}')
    result = evaluate_grid([model], [test_set], str(tmp_path / 'logs'))
    [row] = result.rows
    assert row['metrics'] == pytest.approx(json.loads(dumped.read_text()), abs=1e-9)
    # weights that hold no training record of this project: no selection rule to state
    [model_card] = result.card['models']
    assert model_card['selection']['kind'] == 'zero-shot' and result.card['reranker'] is None


@pytest.mark.parametrize(
    'args, message',
    [
        (['--model', 'configs/cmpagl_demo.py', '--test-set', 'a=configs/cmpagl_demo.py'], 'no "="'),
        (['--model', 'm=configs/nope.py:x.pth', '--test-set', 'a=configs/cmpagl_demo.py'],
         'model m: config not found: configs/nope.py'),
        (['--model', 'm=configs/cmpagl_demo.py:missing.pth', '--test-set', 'a=configs/cmpagl_demo.py'],
         'model m: checkpoint not found: missing.pth'),
        (['--model', 'm=configs/cmpagl_demo.py:{ckpt}', '--test-set', 'ucm=configs/nope.py'],
         'test set ucm: config not found: configs/nope.py'),
    ],
)  # fmt: skip
def test_results_table_refuses_bad_input_in_one_line_before_the_slow_imports(tmp_path, args, message):
    ckpt = tmp_path / 'best_mR_epoch_1.pth'
    ckpt.write_bytes(b'not a zip: torch.load would decide')
    args = [a.replace('{ckpt}', str(ckpt)) for a in args]
    proc, elapsed = _run(*args, '--out', str(tmp_path / 'out'), code=2)
    [line] = [line for line in proc.stderr.splitlines() if 'error:' in line]
    assert message in line and 'Traceback' not in proc.stderr
    assert elapsed < 5.0  # before torch and the models load
    assert not (tmp_path / 'out').exists()


def test_results_table_names_a_test_set_whose_data_is_missing_before_any_model_is_built(
    tmp_path, best_checkpoint, monkeypatch, capsys
):
    from mmengine.runner import Runner

    def no_model(*args, **kwargs):
        raise AssertionError('a model was built before the test sets were checked')

    monkeypatch.setattr(Runner, 'from_cfg', no_model)
    _, model = best_checkpoint
    missing = tmp_path / 'no_ucm'
    argv = ['--model', model, '--test-set', f'ucm-test=configs/cmpagl_ucm.py,data_root={missing}',
            '--out', str(tmp_path / 'out')]  # fmt: skip
    monkeypatch.setattr(sys, 'argv', [TOOL, *argv])
    monkeypatch.chdir(REPO)
    tool = runpy.run_path(TOOL, run_name='results_table')
    with pytest.raises(SystemExit) as info:
        tool['main']()
    assert info.value.code == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if 'error:' in line]
    assert line.startswith(
        'results_table.py: error: test set ucm-test (configs/cmpagl_ucm.py): test_dataloader.dataset:'
    )
    assert f'(data_root {missing} does not exist)' in line
    assert not (tmp_path / 'out').exists()


@requires_shared
def test_results_table_protocol_card_of_a_ucm_test_set(tmp_path, demo_root, best_checkpoint):
    """The tiny demo model (32 px pipeline) on the first 21 UCM test images (256 px, resized by the model's
    pipeline): one class, whose captions repeat across its images."""
    _, model = best_checkpoint
    ucm = SHARED_DATA / 'ucm_captions'
    out = tmp_path / 'table'
    proc, _ = _run(
        '--model', model,
        '--test-set', f'demo-test={DEMO},data_root={demo_root}',
        '--test-set', f'ucm-test=configs/cmpagl_ucm.py,data_root={ucm},indices=21',
        '--out', str(out),
    )  # fmt: skip
    card = json.loads((out / 'protocol.json').read_text())
    ucm_card = card['test_sets'][1]
    ann = ucm / 'annotations' / 'dataset_ucm.json'
    assert ucm_card['annotations'][0]['files'] == [{'path': str(ann), 'sha256': _sha256(ann)}]
    assert (ucm_card['split'], ucm_card['images'], ucm_card['subset_of']) == ('test', 21, 210)
    assert 'subset' not in ucm_card  # the first 21 (indices), not a spread subset
    rows = json.loads((out / 'table.json').read_text())['rows']
    assert rows[1]['notes'] == []  # trained and selected on the demo scenes, not on UCM
    # UCM's test captions repeat across images: the card counts them, the equivalent recall is never lower
    metrics = rows[1]['metrics']
    shared = ucm_card['shared_captions']
    assert shared == {k: int(metrics[f'shared/{k}']) for k in ('caption_strings', 'text_queries', 'image_queries')}
    assert 0 < shared['text_queries'] <= 21 * 5 and metrics['equiv/mR'] >= metrics['mR']
    assert '| ucm-test | RSCaptionDataset | test (subset of 210 images) | 21 | 105 |' in proc.stdout
