"""CLIP as a two-tower retriever: open_clip's towers, projections and logit scale."""

from __future__ import annotations

import math
import os

import torch
from mmengine.logging import MMLogger
from mmengine.model import ImgDataPreprocessor

from rsretrieval.registry import MODELS
from rsretrieval.utils.checkpoint_errors import CheckpointError

from ..backbones.open_clip_vision import OpenCLIPVision
from ..text_encoders.open_clip_text import OpenCLIPText
from ..utils.open_clip_weights import (
    TEXT_ROOTS,
    image_preprocess_cfg,
    normalisation_255,
    read_open_clip_state_dict,
    split_open_clip_state,
    tower_mismatch,
    unwrap_state_dict,
)
from .joint_embedding import JointEmbeddingRetriever
from .pre_alignment import COMPONENT, PreAlignment, load_pre_alignment_state, nest_pre_alignment_keys

#: CLIP's contrastive loss: the ITC temperature is CLIP's (1 / exp(logit_scale), loaded with
#: the weights); the lower bound 0.01 is open_clip's clamp of the logit scale at 100.
CLIP_ITC = dict(type='ITCLoss', temperature=0.07, temp_range=(0.01, 0.5))
#: The ITC temperature's key, which open_clip's layout names ``logit_scale``.
ITC_TEMP = f'{COMPONENT}.itc_loss.temp'


@MODELS.register_module()
class CLIPRetriever(JointEmbeddingRetriever):
    """A CLIP-family model (RemoteCLIP, GeoRSCLIP, OpenAI CLIP, ...) as a retriever.

    Image embedding: CLIP's (``OpenCLIPVision``'s global token), L2-normalised;
    text embedding: CLIP's (``OpenCLIPText``'s token 0, the end-of-text
    feature), L2-normalised; similarity: their cosine. Both towers end in
    CLIP's joint space, so no projection is added: with a checkpoint's weights
    the similarities are open_clip's (``encode_image``/``encode_text``,
    normalised) exactly, and the ranking and SMR are those of
    ``logit_scale * cosine`` (a positive scale changes neither).

    Training is :class:`PreAlignment`, as CMPAGL's first stage: ``itc``
    (CLIP's contrastive loss by default, in-batch; with ``queue_size > 0``,
    momentum encoders and a feature queue) and/or ``triplet`` (the optimized
    triplet loss). The ITC temperature *is* CLIP's logit scale
    (``T = 1 / exp(logit_scale)``): loaded from the checkpoint, trained, and
    saved back as ``logit_scale``.

    The state dict has open_clip's layout (``visual.*``, ``token_embedding.weight``,
    ``transformer.*``, ..., ``logit_scale``), plus the momentum copies and queue
    when ``queue_size > 0``: a RemoteCLIP / GeoRSCLIP / open_clip checkpoint is a
    checkpoint of this model (``tools/test.py CONFIG CKPT``), and a fine-tuned
    one (without a queue) loads into ``open_clip.create_model`` as it is.

    Args:
        backbone: ``OpenCLIPVision`` config.
        text_encoder: ``OpenCLIPText`` config (the same CLIP: equal embedding widths).
        pretrained: Local open_clip checkpoint loaded by :meth:`init_weights`
            (both towers and the logit scale), for fine-tuning; to evaluate a
            checkpoint, give it to ``tools/test.py`` instead.
        itc: ``ITCLoss`` config or None.
        triplet: ``OptimizedTripletLoss`` config or None.
        queue_size: ITC feature-queue length (0: in-batch ITC, CLIP's usual
            fine-tuning, no momentum encoders).
        momentum: EMA coefficient of the momentum encoders.
        distill_alpha: Momentum distillation weight (needs the queue).
        data_preprocessor: Data preprocessor config; default: normalisation
            with the architecture's own mean and std (CLIP's). Another
            normalisation is refused.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        backbone: dict,
        text_encoder: dict,
        pretrained: str | os.PathLike | None = None,
        itc: dict | None = CLIP_ITC,
        triplet: dict | None = None,
        queue_size: int = 0,
        momentum: float = 0.995,
        distill_alpha: float = 0.0,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        if itc is None and triplet is None:
            raise ValueError('CLIPRetriever needs itc, triplet or both (the default itc serves evaluation too)')
        if backbone.get('type') != 'OpenCLIPVision' or text_encoder.get('type') != 'OpenCLIPText':
            raise ValueError(
                'CLIPRetriever pairs an OpenCLIPVision backbone with an OpenCLIPText text encoder; to mix a CLIP '
                'tower with another encoder use DualEncoderRetriever or CMPAGL'
            )
        if data_preprocessor is None:
            pp = image_preprocess_cfg(backbone['arch'], backbone.get('model_cfg'), backbone.get('preprocess_cfg'))
            mean, std = normalisation_255(pp)
            data_preprocessor = dict(type='RetrievalDataPreprocessor', mean=mean, std=std)
        # token 0 of each tower is CLIP's embedding, already in the joint space: no projection
        super().__init__(backbone, text_encoder, None, 'cls', data_preprocessor, init_cfg)
        assert isinstance(self.backbone, OpenCLIPVision) and isinstance(self.text_encoder, OpenCLIPText)
        self._check_normalisation()
        self.pretrained = pretrained
        self.pre_alignment = PreAlignment(self, itc, triplet, queue_size, momentum, distill_alpha)
        if self.pre_alignment.itc_loss is None:  # the logit scale is kept for open_clip's layout
            self.register_buffer('logit_scale', torch.tensor(math.log(1 / 0.07)))
        self.register_state_dict_post_hook(_to_open_clip_layout)
        self.register_load_state_dict_pre_hook(_from_open_clip_layout)  # before the pre-alignment hook
        self.register_load_state_dict_pre_hook(load_pre_alignment_state)

    def _check_normalisation(self) -> None:
        dp = self.data_preprocessor
        if not isinstance(dp, ImgDataPreprocessor) or not getattr(dp, '_enable_normalize', False):
            return
        mean, std = self.backbone.mean_255, self.backbone.std_255
        ok = torch.allclose(dp.mean.flatten().cpu(), torch.tensor(mean), atol=1e-2) and torch.allclose(
            dp.std.flatten().cpu(), torch.tensor(std), atol=1e-2
        )
        if not ok:
            raise ValueError(
                f'CLIPRetriever: the data_preprocessor normalises with mean {_fmt(dp.mean.flatten())} std '
                f'{_fmt(dp.std.flatten())}, but {self.backbone.arch} was trained with mean {_fmt(mean)} std '
                f'{_fmt(std)} (0-255 scale, open_clip preprocess_cfg): leave data_preprocessor out or set these'
            )

    # ------------------------------------------------------------ logit scale
    @property
    def logit_scale_value(self) -> float:
        """CLIP's logit scale ``log(1 / T)`` (the ITC temperature ``T``)."""
        itc = self.pre_alignment.itc_loss
        if itc is not None:
            return -math.log(float(itc.temp.detach().clamp(*itc.temp_range)))
        return float(self.logit_scale)

    # ----------------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Initialise (the towers load their own ``pretrained``), then load ``pretrained``:
        both towers and the logit scale, exactly; the momentum copies follow."""
        super().init_weights()
        if self.pretrained is not None:
            self._load_pretrained(self.pretrained)
        self.pre_alignment.sync_momentum(self)

    def _load_pretrained(self, path: str | os.PathLike) -> None:
        state = read_open_clip_state_dict(path)
        self.backbone.load_open_clip(path, state)
        self.text_encoder.load_open_clip(path, state)
        _, _, rest = split_open_clip_state(state)
        if 'logit_scale' in rest:
            with torch.no_grad():
                itc = self.pre_alignment.itc_loss
                if itc is not None:
                    itc.temp.copy_(torch.exp(-rest['logit_scale'].double()).reshape(itc.temp.shape))
                else:
                    self.logit_scale.copy_(rest['logit_scale'].reshape(()))
        ignored = sorted(k for k in rest if k != 'logit_scale')
        if ignored:
            MMLogger.get_current_instance().info(f'CLIPRetriever: not used from {path}: {ignored[:8]}')

    def adapt_checkpoint(self, checkpoint: dict, path: str | os.PathLike) -> dict:
        """A loaded checkpoint made ready for a strict load into this model.

        Unwraps a ``'module.'``/``'_orig_mod.'`` prefix that every key carries
        (open_clip's DDP training checkpoints) and checks each tower the file
        holds against the config's architecture, so that a mismatch fails in one
        line naming both (e.g. a ViT-B-16 checkpoint for a ViT-B-32 config).
        The pre-alignment's keys load from either layout
        (:func:`~.pre_alignment.nest_pre_alignment_keys`).

        Args:
            checkpoint: What ``torch.load(weights_only=True)`` returned.
            path: The file, for messages.

        Returns:
            ``{'state_dict': tensors, ...}`` with the checkpoint's other entries.

        Raises:
            CheckpointError: A tower of another architecture.
        """
        state = nest_pre_alignment_keys(unwrap_state_dict(checkpoint, path))
        image, text, _ = split_open_clip_state(state)
        for module, tower_state, tower, arch in (
            (self.backbone.visual, image, 'image', self.backbone.arch),
            (self.text_encoder, text, 'text', self.text_encoder.arch),
        ):
            problem = tower_mismatch(module, tower_state, path, tower, arch) if tower_state else None
            if problem:
                raise CheckpointError(problem)
        extra = {k: v for k, v in checkpoint.items() if k != 'state_dict'} if 'state_dict' in checkpoint else {}
        return dict(extra, state_dict=state)

    # ----------------------------------------------------------------- training
    def loss(self, inputs: torch.Tensor, data_samples: dict) -> dict[str, torch.Tensor]:
        """The pre-alignment losses of a batch (``loss_itc`` and/or ``loss_triplet``)."""
        _, ids, mask = self.training_tokens(data_samples['caption'], inputs.device)
        img_emb = self.image_tokens(inputs)[1]
        txt_emb = self.text_tokens(ids, mask)[1]
        return self.pre_alignment(self, inputs, ids, mask, img_emb, txt_emb, data_samples['image_id'])


def _fmt(values) -> str:
    return '(' + ', '.join(f'{float(v):.2f}' for v in values) + ')'


# ------------------------------------------------------------------ state-dict layout
def _to_open_clip_layout(model: CLIPRetriever, state_dict: dict, prefix: str, local_metadata) -> None:
    """State-dict post-hook: present the towers and the temperature under open_clip's names."""
    text_prefix = model.text_encoder.open_clip_prefix
    items = list(state_dict.items())
    state_dict.clear()  # rebuilt in order, renamed
    for key, value in items:
        rest = key[len(prefix) :] if key.startswith(prefix) else None
        if rest is None:
            pass
        elif rest.startswith('backbone.visual.'):
            key = prefix + rest[len('backbone.') :]
        elif rest.startswith('text_encoder.'):
            key = prefix + text_prefix + rest[len('text_encoder.') :]
        elif rest == ITC_TEMP:  # in float64: loading it back gives the same float32 temperature
            key, value = prefix + 'logit_scale', -torch.log(value.detach().double())
        state_dict[key] = value


def _from_open_clip_layout(
    model: CLIPRetriever, state_dict: dict, prefix: str, local_metadata, strict, missing_keys, unexpected_keys, errors
) -> None:
    """Load-state-dict pre-hook: open_clip's names (a RemoteCLIP/GeoRSCLIP/open_clip
    checkpoint, or this model's own) to the modules' names."""
    text_prefix = model.text_encoder.open_clip_prefix
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest, new = key[len(prefix) :], None
        if rest.startswith('visual.'):
            new = 'backbone.' + rest
        elif text_prefix and rest.startswith(text_prefix):
            new = 'text_encoder.' + rest[len(text_prefix) :]
        elif not text_prefix and rest.split('.', 1)[0] in TEXT_ROOTS:
            new = 'text_encoder.' + rest
        elif rest == 'logit_scale' and model.pre_alignment.itc_loss is not None:
            temp = model.pre_alignment.itc_loss.temp
            value = state_dict.pop(key)
            state_dict[prefix + ITC_TEMP] = torch.exp(-value.double()).reshape(temp.shape).to(temp.dtype)
            continue
        if new is not None:
            state_dict[prefix + new] = state_dict.pop(key)
