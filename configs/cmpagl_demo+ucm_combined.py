# Combined-data training at smoke scale: the demo's small CMPAGL (cmpagl_demo.py) trained on the
# synthetic demo scenes plus 210 UCM-Captions training images (10 per class, spread over the
# split) as one training set, without the training images that a leakage check found too close
# to a held-out image; validated on each dataset's own val split (demo/..., ucm/...; `mR`, which
# selects the checkpoint, is their mean) and tested on each test split. Image and caption ids are
# offset per dataset, so the two datasets' image 0 are never positives of each other.
# UCM-Captions is read from data/ucm_captions (docs/datasets.md), the demo scenes from
# data/demo_scenes (generated on first use). First the exclusion list, then train and test:
#   python tools/analysis_tools/check_leaks.py --config demo=configs/cmpagl_demo.py \
#       --config ucm=configs/cmpagl_ucm.py --out work_dirs/leaks/demo+ucm
#   python tools/train.py configs/cmpagl_demo+ucm_combined.py
#   python tools/test.py configs/cmpagl_demo+ucm_combined.py \
#       work_dirs/cmpagl_demo+ucm_combined/best_mR_epoch_N.pth
_base_ = ['cmpagl_demo.py']
ucm_root = 'data/ucm_captions'
exclusions = 'work_dirs/leaks/demo+ucm/exclusions.json'
ucm_subset = dict(num_images=210, seed=0)  # of 1,680: a smoke run, not a result
dataset_names = ['demo', 'ucm']
_demo = dict(type='DemoSceneDataset', data_root=_base_.data_root, generator=_base_.generator)
_ucm = dict(
    type='RSCaptionDataset',
    data_root=ucm_root,
    ann_file='annotations/dataset_ucm.json',
    data_prefix=dict(img_path='images'),
)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CombinedCaptionDataset',
        names=dataset_names,
        datasets=[
            dict(_demo, split='train', exclude=dict(file=exclusions, source='demo')),
            dict(_ucm, split='train', subset=ucm_subset, exclude=dict(file=exclusions, source='ucm')),
        ],
        pipeline=_base_.train_pipeline,
    )
)
# each evaluation loader: one part per dataset, each evaluated on its own
_evaluation = dict(
    _delete_=True,
    type='CombinedCaptionDataset',
    names=dataset_names,
    test_mode=True,
    pipeline=_base_.test_pipeline,
)
val_dataloader = dict(dataset=dict(_evaluation, datasets=[dict(_demo, split='val'), dict(_ucm, split='val')]))
test_dataloader = dict(dataset=dict(_evaluation, datasets=[dict(_demo, split='test'), dict(_ucm, split='test')]))
