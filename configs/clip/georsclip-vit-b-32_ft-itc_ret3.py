# GeoRSCLIP's ViT-B-32 (RS5M) fine-tuned on RET-3 exactly as remoteclip-vit-b-32_ft-itc_ret3.py:
# the same data, exclusion list, schedule and selection; only the starting weights differ.
#   1. the exclusion list (once per copy of the data):
#      python tools/analysis_tools/check_leaks.py --config rsicd=configs/cmpagl_rsicd.py \
#          --config rsitmd=configs/cmpagl_rsitmd.py --config ucm=configs/cmpagl_ucm.py \
#          --out work_dirs/leaks/ret3
#   2. python tools/train.py configs/clip/georsclip-vit-b-32_ft-itc_ret3.py
#   3. python tools/test.py configs/clip/georsclip-vit-b-32_ft-itc_ret3.py \
#          work_dirs/georsclip-vit-b-32_ft-itc_ret3/best_mR_epoch_N.pth
_base_ = ['remoteclip-vit-b-32_ft-itc_ret3.py']
model = dict(pretrained='georsclip-vit-b-32')
