# CMPAGL (the UCM-Captions setting) on a dataset exported as one caption table,
# `captions.tsv` with `image<TAB>caption<TAB>split` lines, and its images in `images/`.
# `ann_format='tsv'` is this plugin's format; installed, the plugin is found through its
# entry point (without installing it, see cmpagl_convnext_demo.py for `custom_imports`).
# Left out, `ann_format` is detected: the plugin's detector claims a `.tsv` file.
#   python tools/train.py projects/example_plugin/configs/cmpagl_captions_tsv.py \
#       --cfg-options data_root=data/my_captions
_base_ = ['../../../configs/cmpagl_ucm.py']
data_root = 'data/my_captions'
# merged into the UCM loaders' datasets, which keep their split and `images/` folder
_table = dict(data_root=data_root, ann_file='captions.tsv', ann_format='tsv')
train_dataloader = dict(dataset=_table)
val_dataloader = dict(dataset=_table)
test_dataloader = dict(dataset=_table)
