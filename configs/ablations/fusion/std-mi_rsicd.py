# Table V, "Std-MI": standard modal interaction without pre-alignment. No ITC or
# triplet loss; the fusion layers (6, as PA-MI) are split into an image-queries-text and a
# text-queries-image stack; retrieval scores come from the match head over every
# (image, caption) pair. ITM negatives are drawn as in the parent (softmax over in-batch
# embedding similarity); with no alignment loss the projections stay as initialised (frozen),
# so the draw is close to uniform. Parent: the PA-MI model.
_base_ = ['../components/gswin_itc-mlm-itm-triplet_rsicd.py']
model = dict(
    fusion_head=dict(_delete_=True, type='StandardFusion', pretrained=_base_.text_weights, num_layers=6),
    itc=None,
    triplet=None,
    retrieval_scores='match_head',
)
# Only the model changes: the schedule, validation every epoch and checkpoint selection are
# the parent's. Scoring every pair runs the fusion encoder N_img x N_txt times per validation
# (docs/configs.md gives the cost and how to validate both sides less often, together).
