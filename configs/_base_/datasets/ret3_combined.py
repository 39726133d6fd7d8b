# RET-3: the training splits of RSICD, RSITMD and UCM-Captions as one training set (as RemoteCLIP,
# GeoRSCLIP and HarMA fine-tune), without the training images that a leakage check found too
# close to a held-out image of any of the three (RSITMD reuses RSICD images). Each dataset keeps
# its own held-out part: validation reads RSICD's and UCM's val splits and RSITMD's 300-image
# holdout (the release has no val split: rsitmd.py), each evaluated on its own; the unprefixed
# metrics, `mR` for checkpoint selection included, are the mean over the three parts, and the
# test splits are read only by tools/test.py (per dataset: rsicd/mR, rsitmd/mR, ucm/mR).
# Image and caption ids are offset per dataset, so two datasets' image 0 are never positives of
# each other in ITC/ITM/triplet. The splits and options are those of rsicd.py, rsitmd.py and
# ucm_captions.py (Karpathy JSON files); docs/datasets.md#combined-data-training.
# Make the exclusion list first (source names rsicd, rsitmd, ucm as below):
#   python tools/analysis_tools/check_leaks.py --config rsicd=configs/cmpagl_rsicd.py \
#       --config rsitmd=configs/cmpagl_rsitmd.py --config ucm=configs/cmpagl_ucm.py --out work_dirs/leaks/ret3
_base_ = ['rs_captions.py']
rsicd_root = 'data/rsicd'
rsitmd_root = 'data/rsitmd'
ucm_root = 'data/ucm_captions'
exclusions = 'work_dirs/leaks/ret3/exclusions.json'
dataset_names = ['rsicd', 'rsitmd', 'ucm']
_rsicd = dict(
    type='RSCaptionDataset',
    data_root=rsicd_root,
    ann_file='annotations/dataset_rsicd.json',
    data_prefix=dict(img_path='images'),
)
_rsitmd = dict(
    type='RSCaptionDataset',
    data_root=rsitmd_root,
    ann_file='annotations/dataset_RSITMD.json',
    data_prefix=dict(img_path='images'),
    empty_captions='drop',
    holdout=dict(split='train', num_images=300, seed=0),  # rsitmd.py's: the same 300 images
)
_ucm = dict(
    type='RSCaptionDataset',
    data_root=ucm_root,
    ann_file='annotations/dataset_ucm.json',
    data_prefix=dict(img_path='images'),
)
train_dataloader = dict(
    dataset=dict(
        type='CombinedCaptionDataset',
        names=dataset_names,
        datasets=[
            dict(_rsicd, split='train', exclude=dict(file=exclusions, source='rsicd')),
            dict(_rsitmd, split='train', exclude=dict(file=exclusions, source='rsitmd')),
            dict(_ucm, split='train', exclude=dict(file=exclusions, source='ucm')),
        ],
    )
)
val_dataloader = dict(
    dataset=dict(
        type='CombinedCaptionDataset',
        names=dataset_names,
        datasets=[dict(_rsicd, split='val'), dict(_rsitmd, split='holdout'), dict(_ucm, split='val')],
    )
)
test_dataloader = dict(
    dataset=dict(
        type='CombinedCaptionDataset',
        names=dataset_names,
        datasets=[dict(_rsicd, split='test'), dict(_rsitmd, split='test'), dict(_ucm, split='test')],
    )
)
