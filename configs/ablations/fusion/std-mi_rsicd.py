# Table V, "Std-MI": standard modal interaction without pre-alignment. No ITC or
# triplet loss; the fusion layers (6, as PA-MI) are split into an image-queries-text and a
# text-queries-image stack; retrieval scores come from the match head over every
# (image, caption) pair. Without aligned embeddings there is nothing to mine hard ITM
# negatives from: they are drawn uniformly. Parent: the PA-MI model.
_base_ = ['../components/gswin_itc-mlm-itm-otri_rsicd.py']
model = dict(
    fusion_head=dict(_delete_=True, type='StandardFusion', pretrained=_base_.text_weights, num_layers=6),
    itc=None,
    triplet=None,
    itm=dict(hard_fraction=0.0),
    retrieval_scores='match_head',
)
# the embedding projections get no gradient without ITC and the triplet loss
find_unused_parameters = True
# scoring every pair runs the fusion encoder N_img x N_txt times: validate every 10 epochs
train_cfg = dict(val_interval=10)
