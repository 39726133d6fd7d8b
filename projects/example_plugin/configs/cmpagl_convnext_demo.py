# The CPU demo of rsretrieval with the plugin's ConvNeXt in place of Gswin. With the
# plugin installed (pip install -e projects/example_plugin) nothing else is needed: the
# registry finds `ConvNeXtBackbone` (rsretrieval's TimmBackbone for timm's 'convnext_tiny')
# through the plugin's entry point. Without installing
# it, add the project folder to PYTHONPATH and uncomment:
# custom_imports = dict(imports=['rsretrieval_example_plugin'], allow_failed_imports=False)
#   python tools/train.py projects/example_plugin/configs/cmpagl_convnext_demo.py
_base_ = ['../../../configs/cmpagl_demo.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='ConvNeXtBackbone',
        depths=(1, 1, 2, 1),
        dims=(32, 64, 128, 256),
        drop_path_rate=0.0,
    )
)
