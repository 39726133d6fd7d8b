"""The protocol card's parts, each on its own: selection rules, specs, hashes, exclusions, row notes, columns."""

from __future__ import annotations

import hashlib
import types

import pytest
from conftest import REPO
from mmengine.config import Config

from rsretrieval.apis.dataset_identity import describe_data
from rsretrieval.apis.protocol_card import annotation_files, exclusion_entry, shared_caption_counts
from rsretrieval.apis.results_table import SELECTED_ON_THIS_SET, TRAINED_ON_THIS_SET, row_notes
from rsretrieval.apis.selection_rule import ON_TEST_SPLIT, selection_rule, validates_on_test_split
from rsretrieval.apis.table_report import markdown_table
from rsretrieval.apis.table_specs import (
    SpecError,
    TableModel,
    check_unique_names,
    parse_model_spec,
    parse_test_set_spec,
    split_top_level,
)
from rsretrieval.datasets import ExclusionEntry, write_exclusion_list
from rsretrieval.utils import read_config

DEMO = str(REPO / 'configs' / 'cmpagl_demo.py')
VAL_ON_TEST = str(REPO / 'configs' / 'cmpagl_rsitmd_val-on-test.py')
RSITMD = str(REPO / 'configs' / 'cmpagl_rsitmd.py')


def _sha256(path) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


# ------------------------------------------------------------------ selection rule
def test_protocol_selection_rule_of_a_best_checkpoint_names_the_val_data_and_epoch():
    rule = selection_rule('best_mR_epoch_3.pth', read_config(DEMO))
    assert (rule.kind, rule.step, rule.on_test_split) == ('best', 3, False)
    assert rule.text == 'best val mR on data/demo_scenes (DemoSceneDataset) [split val] (epoch 3)'
    rsitmd = selection_rule('best_mR_epoch_12.pth', read_config(RSITMD))
    assert rsitmd.text == (
        'best val mR on data/rsitmd/annotations/dataset_RSITMD.json '
        '[split holdout: 300 images of train, seed 0] (epoch 12)'
    )


def test_protocol_selection_rule_flags_a_config_that_selects_on_the_test_split():
    cfg = read_config(VAL_ON_TEST)
    assert validates_on_test_split(cfg) and not validates_on_test_split(read_config(RSITMD))
    rule = selection_rule('best_mR_epoch_41.pth', cfg)
    assert rule.on_test_split and rule.text.startswith(f'{ON_TEST_SPLIT}: best val mR on ')
    assert '[split test] (epoch 41)' in rule.text
    assert rule.text.endswith('[checkpoint selected on the test split (published practice)]')
    # the last epoch of the same config was not selected on anything
    assert selection_rule('epoch_50.pth', cfg).text == 'last epoch (50)'


def test_protocol_selection_rule_of_step_checkpoints_says_last_or_fixed():
    cfg = read_config(DEMO)  # max_epochs = 3
    assert selection_rule('epoch_3.pth', cfg).kind == 'last'
    fixed = selection_rule('epoch_2.pth', cfg)
    assert fixed.kind == 'fixed' and fixed.text.startswith('epoch 2 of 3 (a fixed epoch, not the last')
    no_schedule = Config(dict(train_cfg=dict(type='IterBasedTrainLoop')))
    assert selection_rule('iter_500.pth', no_schedule).kind == 'unknown'


def test_protocol_selection_rule_of_zero_shot_and_unnamed_weights():
    cfg = read_config(DEMO)
    published = selection_rule('remoteclip-vit-b-32', cfg, published=True)
    assert (published.kind, published.text) == (
        'zero-shot',
        'no selection (zero-shot: published weights remoteclip-vit-b-32)',
    )
    # a best_* name given by name is still published weights: the name is the zoo's, not our hook's
    assert selection_rule('best_mR_epoch_3.pth', cfg, published=True).kind == 'zero-shot'
    assert selection_rule('RemoteCLIP-ViT-B-32.pt', cfg, meta=None).kind == 'zero-shot'
    unknown = selection_rule('mine.pth', cfg, meta={'epoch': 7})
    assert unknown.kind == 'unknown' and 'saved at epoch 7' in unknown.text


def test_protocol_selection_rule_notes_a_metric_the_config_does_not_keep():
    rule = selection_rule('best_i2t_R@1_epoch_2.pth', read_config(DEMO))
    assert rule.kind == 'best' and "the config now keeps save_best='mR'" in rule.text


# ------------------------------------------------------------------ specs
def test_table_specs_read_models_test_sets_and_bracketed_overrides():
    spec = parse_model_spec(
        'tiny=configs/cmpagl_demo.py:w/best_mR_epoch_1.pth,model.backbone.depths=(1,1),data_root=/d'
    )
    assert (spec.name, spec.config, spec.weights) == ('tiny', 'configs/cmpagl_demo.py', 'w/best_mR_epoch_1.pth')
    assert spec.options == {'model.backbone.depths': (1, 1), 'data_root': '/d'}
    hub = parse_model_spec('rc=configs/clip/remoteclip-vit-b-32_zeroshot_ucm.py:hf-hub:org/name')
    assert hub.weights == 'hf-hub:org/name'
    assert parse_model_spec('mine=work_dirs/exported').weights is None  # a model folder holds its weights
    test_set = parse_test_set_spec('ucm=configs/cmpagl_ucm.py,data_root=/u,split=val,subset.num_images=20')
    assert test_set.options == {
        'data_root': '/u',
        'test_dataloader.dataset.split': 'val',
        'test_dataloader.dataset.subset.num_images': 20,
    }
    assert split_top_level("a,b=[1,2],c='x,y'") == ['a', 'b=[1,2]', "c='x,y'"]


@pytest.mark.parametrize(
    'parse, text, message',
    [
        (parse_model_spec, 'configs/cmpagl_demo.py', 'expected NAME=CONFIG:WEIGHTS or NAME=MODEL_FOLDER (no "=")'),
        (parse_model_spec, 'demo=configs/cmpagl_demo.py', 'the config configs/cmpagl_demo.py needs its weights'),
        (parse_model_spec, 'my model=c.py:w.pth', "the name 'my model' must be"),
        (parse_model_spec, 'm=c.py:w.pth,depths', "override 'depths' is not KEY=VALUE"),
        (parse_model_spec, 'm=c.py:w.pth,a=(1,2', 'cannot read the overrides a=(1,2'),
        (parse_test_set_spec, 'ucm', 'expected NAME=CONFIG[,KEY=VALUE...] (no "=")'),
        (parse_test_set_spec, 'ucm=data/ucm', 'data/ucm is not a config file'),
        (parse_test_set_spec, 'ucm=c.py,test_dataloader.batch_size=8', "the loader's settings (batch size, workers)"),
    ],
)
def test_table_specs_refuse_bad_input_in_one_line_naming_it(parse, text, message):
    with pytest.raises(SpecError) as info:
        parse(text)
    assert message in str(info.value) and '\n' not in str(info.value)


def test_table_specs_refuse_a_name_given_twice():
    specs = [parse_test_set_spec('a=c.py'), parse_test_set_spec('a=d.py,split=val')]
    with pytest.raises(SpecError, match="--test-set a=...: the name 'a' is given twice"):
        check_unique_names(specs, '--test-set')


def test_table_model_checkpoint_name_tells_the_rule_source():
    local = TableModel('m', 'c.py', '/w/best_mR_epoch_2.pth', {}, '/w/best_mR_epoch_2.pth')
    named = TableModel('m', 'c.py', '/cache/x/model.pt', {}, 'remoteclip-vit-b-32', published=True)
    folder = TableModel('m', 'f/config.py', 'f/model.safetensors', {}, 'f', exported_from='epoch_3.pth')
    assert [m.checkpoint_name for m in (local, named, folder)] == [
        'best_mR_epoch_2.pth',
        'remoteclip-vit-b-32',
        'epoch_3.pth',
    ]


# ------------------------------------------------------------------ card parts
def test_protocol_annotation_files_hash_a_precomp_folder_file_by_file(tmp_path):
    folder = tmp_path / 'precomp'
    folder.mkdir()
    (folder / 'test_caps.txt').write_text('a red roof\na grey road\n')
    (folder / 'test_filename.txt').write_text('1.jpg\n2.jpg\n')
    [entry] = annotation_files(types.SimpleNamespace(ann_file=str(folder)))
    assert entry['format'] == 'precomp'
    assert entry['files'] == [
        {'path': str(folder / name), 'sha256': _sha256(folder / name)}
        for name in ('test_caps.txt', 'test_filename.txt')
    ]
    [none] = annotation_files(types.SimpleNamespace())
    assert none == {'path': None, 'note': 'the dataset exposes no annotation file'}


def test_protocol_exclusion_entry_is_the_lists_sha256_or_says_why_not(tmp_path):
    assert exclusion_entry(None) == 'none'
    path = tmp_path / 'exclusions.json'
    sha = write_exclusion_list(str(path), [ExclusionEntry('ucm', 'train', '12.jpg', '0' * 64)], check={})
    entry = exclusion_entry(dict(file=str(path), source='ucm'))
    assert entry == {'file': str(path), 'source': 'ucm', 'sha256': sha} and sha == _sha256(path)
    assert exclusion_entry(dict(file=str(tmp_path / 'gone.json')))['sha256'] == 'file missing'
    (tmp_path / 'bad.json').write_text('{"format": "other"}')
    assert exclusion_entry(dict(file=str(tmp_path / 'bad.json')))['sha256'].startswith('unreadable: exclusion list')


def test_protocol_shared_caption_counts_only_when_the_metric_reports_them():
    metrics = {'mR': 50.0, 'shared/caption_strings': 3.0, 'shared/text_queries': 7.0, 'shared/image_queries': 2.0}
    assert shared_caption_counts(metrics) == {'caption_strings': 3, 'text_queries': 7, 'image_queries': 2}
    assert shared_caption_counts({'mR': 50.0}) is None


def test_protocol_describe_data_of_a_combined_dataset_lists_each_part():
    combined = dict(
        type='CombinedCaptionDataset',
        datasets=[
            dict(type='DemoSceneDataset', data_root='data/demo_scenes', split='val'),
            dict(type='RSCaptionDataset', data_root='data/ucm', ann_file='a.json', split='val'),
        ],
    )
    assert describe_data(combined) == 'data/demo_scenes (DemoSceneDataset) [split val] + data/ucm/a.json [split val]'


# ------------------------------------------------------------------ rows
def _loaders(**splits) -> Config:
    return Config(
        {
            f'{loader}_dataloader': dict(dataset=dict(type='DemoSceneDataset', data_root='/d', split=split))
            for loader, split in splits.items()
        }
    )


def test_table_row_notes_say_when_the_checkpoint_was_selected_or_trained_on_the_set():
    model_cfg = _loaders(train='train', val='val', test='test')
    best = selection_rule('best_mR_epoch_1.pth', model_cfg)
    last = selection_rule('epoch_1.pth', Config(dict(model_cfg.to_dict(), train_cfg=dict(max_epochs=1))))
    assert row_notes(model_cfg, best, _loaders(test='val')) == [SELECTED_ON_THIS_SET]
    assert row_notes(model_cfg, last, _loaders(test='val')) == []  # the last epoch was selected on nothing
    assert row_notes(model_cfg, best, _loaders(test='test')) == []
    assert row_notes(model_cfg, best, _loaders(test='train')) == [TRAINED_ON_THIS_SET]


def test_table_columns_follow_the_reranker_and_the_equivalent_keys():
    raw_only = [dict(model='m', test_set='t', metrics={'i2t_R@1': 1.0, 'mR': 2.0}, notes=[])]
    table = markdown_table(raw_only, None)
    assert 'mR + ' not in table and 'equiv.' not in table
    assert table.splitlines()[2].startswith('| m | t | 1.00 | n/a |')
    reranked = {'mR': 60.0, 'raw/mR': 50.0, 'equiv/mR': 70.0, 'raw/equiv/mR': 65.0}
    table = markdown_table([dict(model='m', test_set='t', metrics=reranked, notes=['x'])], {'type': 'SMR'})
    header, _, row = table.splitlines()
    assert header.endswith('| mR | mR + SMR | equiv. mR | equiv. mR + SMR | notes |')
    assert row.endswith('| 50.00 | 60.00 | 65.00 | 70.00 | x |')


def test_protocol_card_of_a_combined_test_set_lists_each_part_and_sums_its_counts(tmp_path):
    from rsretrieval.apis.protocol_card import test_set_card
    from rsretrieval.apis.table_specs import TestSetSpec

    files = {}
    for name in ('demo', 'ucm'):
        files[name] = tmp_path / f'{name}.json'
        files[name].write_text(f'{{"images": [], "dataset": "{name}"}}')
    parts = [
        types.SimpleNamespace(name=name, metainfo=dict(ann_file=str(files[name]), split=split))
        for name, split in (('demo', 'val'), ('ucm', 'test'))
    ]
    dataset = types.SimpleNamespace(
        metainfo={'num_images': 3}, parts=parts, image_paths=['a', 'b', 'c'], captions=[''] * 15
    )
    counts = dict(caption_strings=1.0, text_queries=4.0, image_queries=2.0)
    metrics = {f'{part}/shared/{k}': v * (i + 1) for i, part in enumerate(('demo', 'ucm')) for k, v in counts.items()}
    metrics.update({f'shared/{k}': v * 1.5 for k, v in counts.items()})  # the loop's mean over the parts
    card = test_set_card(TestSetSpec('combo', DEMO), dataset, metrics)
    assert [(a['part'], a['split'], a['files'][0]['sha256']) for a in card['annotations']] == [
        ('demo', 'val', _sha256(files['demo'])),
        ('ucm', 'test', _sha256(files['ucm'])),
    ]
    assert card['shared_captions_by_part']['ucm'] == {'caption_strings': 2, 'text_queries': 8, 'image_queries': 4}
    assert card['shared_captions'] == {'caption_strings': 3, 'text_queries': 12, 'image_queries': 6}
    assert (card['images'], card['captions'], card['config_sha256']) == (3, 15, _sha256(DEMO))


def test_protocol_training_data_of_a_combined_config_gives_each_exclusion_list(tmp_path):
    from rsretrieval.apis.protocol_card import training_data

    listed = tmp_path / 'exclusions.json'
    sha = write_exclusion_list(str(listed), [], check={})
    train = dict(
        type='CombinedCaptionDataset',
        datasets=[
            dict(type='DemoSceneDataset', data_root='/d', split='train', exclude=dict(file=str(listed), source='demo')),
            dict(type='RSCaptionDataset', data_root='/u', ann_file='a.json', split='train',
                 subset=dict(num_images=210, seed=0), exclude=dict(file=str(tmp_path / 'gone.json'), source='ucm')),
            dict(type='RSCaptionDataset', data_root='/s', ann_file='s.json', split='train'),
        ],
    )  # fmt: skip
    rows = training_data(Config(dict(train_dataloader=dict(dataset=train))))
    assert [row['data'] for row in rows] == [
        '/d (DemoSceneDataset) [split train]',
        '/u/a.json [split train, subset of 210 images, seed 0]',
        '/s/s.json [split train]',
    ]
    assert rows[0]['exclusions'] == {'file': str(listed), 'source': 'demo', 'sha256': sha}
    assert rows[1]['exclusions']['sha256'] == 'file missing' and rows[2]['exclusions'] == 'none'


def test_table_model_folder_names_the_checkpoint_it_was_exported_from(tmp_path):
    from rsretrieval.apis.table_specs import exported_checkpoint_name

    (tmp_path / 'rsretrieval.json').write_text('{"format": "rsretrieval-model", "checkpoint": "best_mR_epoch_9.pth"}')
    assert exported_checkpoint_name(str(tmp_path)) == 'best_mR_epoch_9.pth'
    assert exported_checkpoint_name(str(tmp_path / 'elsewhere')) is None  # no metadata: the rule is unknown
