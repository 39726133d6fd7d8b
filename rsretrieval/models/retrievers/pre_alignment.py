"""Pre-alignment of the two towers: ITC with its queue and momentum encoders, and the optimized triplet loss."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule

from rsretrieval.registry import LOSSES

from ..utils import FeatureQueue, MomentumCopy
from .joint_embedding import JointEmbeddingRetriever

#: The attribute under which a model holds its :class:`PreAlignment`.
COMPONENT = 'pre_alignment'
#: Each momentum copy and the tower it follows.
MOMENTUM_COPIES: dict[str, str] = {'momentum_image': 'image', 'momentum_text': 'text'}
#: The component's parts, first names of its state-dict keys.
PARTS = ('itc_loss', 'triplet_loss', *MOMENTUM_COPIES, 'queue')


class PreAlignment(BaseModule):
    """The losses that align the image and text embeddings, and the state they keep.

    ITC (``ITCLoss``): in-batch, or, with ``queue_size > 0``, against a
    feature queue of momentum embeddings (MoCo/ALBEF): one momentum copy of
    each tower, updated by EMA before each step, embeds the batch, and the
    queue keeps the embeddings of recent batches. Momentum distillation mixes
    the momentum model's similarities into the ITC targets with weight
    ``distill_alpha * distill_ramp`` (``DistillationWarmupHook`` ramps it up).
    The optimized triplet loss (``OptimizedTripletLoss``) reads the same
    embeddings.

    The model keeps its encoders: it hands itself (a
    :class:`~.joint_embedding.JointEmbeddingRetriever`) to every method that
    reads its towers, so that the encoders are submodules of the model only.

    Args:
        model: The model whose towers the momentum copies follow (copied when
            the queue asks for them, not kept).
        itc: ``ITCLoss`` config or None.
        triplet: ``OptimizedTripletLoss`` config or None.
        queue_size: ITC feature-queue length; 0 uses in-batch ITC without
            momentum encoders. At least the global batch size.
        momentum: EMA coefficient of the momentum encoders.
        distill_alpha: Weight of momentum distillation in ITC (ALBEF's 0.4; 0: off).
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        model: JointEmbeddingRetriever,
        itc: dict | None = None,
        triplet: dict | None = None,
        queue_size: int = 0,
        momentum: float = 0.995,
        distill_alpha: float = 0.0,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.itc_loss = LOSSES.build(itc) if itc else None
        self.triplet_loss = LOSSES.build(triplet) if triplet else None
        if not 0 <= distill_alpha < 1:
            raise ValueError(f'distill_alpha must be in [0, 1), got {distill_alpha}')
        self.use_momentum = self.itc_loss is not None and queue_size > 0
        if distill_alpha > 0 and not self.use_momentum:
            raise ValueError('distill_alpha > 0 needs momentum encoders: an ITC loss and queue_size > 0')
        self.distill_alpha = distill_alpha
        #: Fraction of ``distill_alpha`` in use, set by ``DistillationWarmupHook`` (ramp-up).
        self.distill_ramp = 1.0
        if self.use_momentum:
            for name, tower in MOMENTUM_COPIES.items():
                setattr(self, name, MomentumCopy(model.tower(tower), momentum))
            self.queue = FeatureQueue(queue_size, model.embed_dim)

    @property
    def has_losses(self) -> bool:
        """Whether any loss trains the embeddings here."""
        return self.itc_loss is not None or self.triplet_loss is not None

    @torch.no_grad()
    def sync_momentum(self, model: JointEmbeddingRetriever) -> None:
        """Set every momentum copy to the current weights of the tower it follows."""
        for name, tower in MOMENTUM_COPIES.items() if self.use_momentum else ():
            getattr(self, name).copy_from(model.tower(tower))

    @torch.no_grad()
    def momentum_embeddings(
        self, model: JointEmbeddingRetriever, images: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One EMA step of the momentum copies, then their embeddings ``(B, E)`` of the batch."""
        for name, tower in MOMENTUM_COPIES.items():
            getattr(self, name).update(model.tower(tower))
        img_m = model.embed_image_with(self.momentum_image.module, images)[1]
        txt_m = model.embed_text_with(self.momentum_text.module, input_ids, mask)[1]
        return img_m, txt_m

    def forward(
        self,
        model: JointEmbeddingRetriever,
        images: torch.Tensor,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        img_emb: torch.Tensor,
        txt_emb: torch.Tensor,
        image_ids: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """``loss_itc`` and ``loss_triplet`` of a batch (those configured).

        Args:
            model: The model, for the momentum copies to follow and embed with.
            images: ``(B, 3, H, W)`` preprocessed images.
            input_ids: ``(B, L)`` token ids of the captions.
            mask: ``(B, L)`` their attention mask.
            img_emb: ``(B, E)`` the model's image embeddings.
            txt_emb: ``(B, E)`` the model's text embeddings.
            image_ids: ``(B,)`` image id of each pair.
        """
        losses: dict[str, torch.Tensor] = {}
        if self.itc_loss is not None and self.use_momentum:
            img_m, txt_m = self.momentum_embeddings(model, images, input_ids, mask)
            # the queue is concatenated (a copy) before enqueue overwrites it in place
            losses['loss_itc'] = self.itc_loss(
                img_emb,
                txt_emb,
                image_ids,
                img_keys=torch.cat([img_m, self.queue.img]),
                txt_keys=torch.cat([txt_m, self.queue.txt]),
                key_ids=torch.cat([image_ids, self.queue.ids]),
                img_emb_m=img_m,
                txt_emb_m=txt_m,
                alpha=self.distill_alpha * self.distill_ramp,
            )
            self.queue.enqueue(img_m, txt_m, image_ids)
        elif self.itc_loss is not None:
            losses['loss_itc'] = self.itc_loss(img_emb, txt_emb, image_ids)
        if self.triplet_loss is not None:
            losses['loss_triplet'] = self.triplet_loss(img_emb, txt_emb, image_ids)
        return losses


def nest_pre_alignment_keys(state_dict: dict, prefix: str = '') -> dict:
    """Put the keys of the component's parts under :data:`COMPONENT`, in place.

    A checkpoint holds the parts either under ``pre_alignment.`` or at the
    model's top level, the flat layout (``itc_loss.temp``, ``triplet_loss.*``,
    ``momentum_image.module.N.*``, ``momentum_text.module.N.*``, ``queue.*``);
    both load.

    Args:
        state_dict: A model's state dict (keys in the order they came).
        prefix: The model's prefix in it.

    Returns:
        ``state_dict``.
    """
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix) :]
        if rest.split('.', 1)[0] in PARTS:
            state_dict[f'{prefix}{COMPONENT}.{rest}'] = state_dict.pop(key)
    return state_dict


def load_pre_alignment_state(
    model: JointEmbeddingRetriever,
    state_dict: dict,
    prefix: str,
    local_metadata,
    strict,
    missing_keys,
    unexpected_keys,
    error_msgs,
) -> None:
    """Load-state-dict pre-hook of a model holding a :class:`PreAlignment`.

    Nests the component's keys (:func:`nest_pre_alignment_keys`). Then, where
    ``state_dict`` holds an encoder but not its momentum copy (a checkpoint of
    a model without momentum encoders, a partial one), the copy gets the same
    tensors, so that it equals its source after the load. Copies that the
    checkpoint holds (resuming; fine-tuning from a CMPAGL checkpoint, as ALBEF
    does) load as saved.
    """
    nest_pre_alignment_keys(state_dict, prefix)
    if not getattr(model, COMPONENT).use_momentum:
        return
    filled = 0
    for name, tower in MOMENTUM_COPIES.items():
        for i, source in enumerate(model.towers[tower]):
            for key in getattr(model, source).state_dict(keep_vars=True):
                src, dst = f'{prefix}{source}.{key}', f'{prefix}{COMPONENT}.{name}.module.{i}.{key}'
                if dst not in state_dict and src in state_dict:
                    state_dict[dst] = state_dict[src]
                    filled += 1
    if filled:
        MMLogger.get_current_instance().info(
            f'The checkpoint has no momentum copy of {filled} encoder tensors: '
            'the momentum encoders start from the loaded encoder weights'
        )


def nest_checkpoint(checkpoint: Mapping) -> dict:
    """A loaded checkpoint (``{'state_dict': ...}`` or a state dict) with the component's keys nested."""
    if isinstance(checkpoint.get('state_dict'), Mapping):
        return dict(checkpoint, state_dict=nest_pre_alignment_keys(dict(checkpoint['state_dict'])))
    return nest_pre_alignment_keys(dict(checkpoint))
