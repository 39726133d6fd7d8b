"""CMPAGL: pre-aligned global-local retrieval (the paper's full model)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from mmengine.logging import MMLogger
from torch import nn
from torch.distributed.nn.functional import all_gather as all_gather_with_grad

from rsretrieval.registry import FUSION_HEADS, LOSSES, MODELS
from rsretrieval.utils.progress import Progress

from ..utils import FeatureQueue, MomentumCopy
from .two_tower import TwoTowerRetriever

#: Each momentum copy and the modules it follows, in the order of its ``module`` list.
MOMENTUM_SOURCES: dict[str, tuple[str, ...]] = {
    'momentum_image': ('backbone', 'image_proj'),
    'momentum_text': ('text_encoder', 'text_proj'),
}


@MODELS.register_module()
class CMPAGL(TwoTowerRetriever):
    """Image encoder + text encoder pre-aligned by ITC and the optimized triplet
    loss, then a fusion encoder trained with ITM (hard negatives) and MLM.

    Total loss ``L = L_itc + L_triplet + L_itm + L_mlm`` (each weighted by its
    loss config's ``loss_weight``; a loss set to ``None`` is switched off, for
    the ablations). Inference runs only the two encoders and projections:
    similarity is the cosine of the projected global image token and the
    projected text ``[CLS]``.

    Args:
        backbone: ``BACKBONES`` config (Gswin in the paper).
        text_encoder: ``TEXT_ENCODERS`` config (the first half of BERT).
        fusion_head: ``FUSION_HEADS`` config (the second half, with
            cross-attention); built with ``image_width`` = the backbone's width.
        embed_dim: Width of the joint embedding space.
        text_pooling: ``'cls'`` (the paper) or ``'mean'`` (for text encoders
            pretrained with mean pooling, such as MiniLM).
        itc: ``ITCLoss`` config or None.
        triplet: ``OptimizedTripletLoss`` config or None.
        itm: ``ITMLoss`` config or None (needs ``fusion_head``).
        mlm: ``MLMLoss`` config or None (needs ``fusion_head``).
        queue_size: ITC feature-queue length; 0 uses in-batch ITC without
            momentum encoders. At least the global batch size.
        momentum: EMA coefficient of the momentum encoders.
        distill_alpha: Weight of momentum distillation in ITC (ALBEF's 0.4; 0:
            off, as Eq. 18 and the paper's configs). When on, it ramps up
            linearly over the first epoch (``DistillationWarmupHook``, in the
            default runtime), as ALBEF does.
        retrieval_scores: ``'embedding'`` (cosine of the projected features;
            the fusion encoder is not run) or ``'match_head'`` (the fusion
            head's match probability for every (image, caption) pair, as the
            standard-fusion baseline needs; one fusion pass per pair).
        pair_batch_size: Pairs per fusion pass when scoring with the match head.
        data_preprocessor: Data preprocessor config.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        backbone: dict,
        text_encoder: dict,
        fusion_head: dict | None,
        embed_dim: int = 256,
        text_pooling: str = 'cls',
        itc: dict | None = None,
        triplet: dict | None = None,
        itm: dict | None = None,
        mlm: dict | None = None,
        queue_size: int = 65536,
        momentum: float = 0.995,
        distill_alpha: float = 0.0,
        retrieval_scores: str = 'embedding',
        pair_batch_size: int = 256,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(backbone, text_encoder, embed_dim, text_pooling, data_preprocessor, init_cfg)
        # the fusion head builds only the heads that a loss (or the retrieval scores) use
        head_args = dict(
            image_width=self.backbone.out_channels,
            with_match_head=bool(itm) or retrieval_scores == 'match_head',
            with_mlm_head=bool(mlm),
        )
        self.fusion_head = FUSION_HEADS.build(fusion_head, default_args=head_args) if fusion_head else None
        if (itm or mlm) and self.fusion_head is None:
            raise ValueError('ITM and MLM need a fusion_head')
        if retrieval_scores not in ('embedding', 'match_head'):
            raise ValueError(f"retrieval_scores must be 'embedding' or 'match_head', got {retrieval_scores!r}")
        if retrieval_scores == 'match_head' and self.fusion_head is None:
            raise ValueError("retrieval_scores='match_head' needs a fusion_head")
        self.retrieval_scores, self.pair_batch_size = retrieval_scores, pair_batch_size
        self.itc_loss = LOSSES.build(itc) if itc else None
        self.triplet_loss = LOSSES.build(triplet) if triplet else None
        if self.itc_loss is None and self.triplet_loss is None:
            # no loss trains the embedding projections (Std-MI): frozen, so that no
            # parameter goes without a gradient (DDP needs no find_unused_parameters)
            self.image_proj.requires_grad_(False)
            self.text_proj.requires_grad_(False)
        self.itm_loss = LOSSES.build(itm) if itm else None
        self.mlm_loss = LOSSES.build(mlm) if mlm else None
        if not any((self.itc_loss, self.triplet_loss, self.itm_loss, self.mlm_loss)):
            raise ValueError('CMPAGL needs at least one of itc, triplet, itm, mlm')
        if self.mlm_loss is not None:
            self.fusion_head.tie_word_embeddings(self.text_encoder.bert.embeddings.word_embeddings)
        #: Fraction of ``distill_alpha`` in use, set by ``DistillationWarmupHook`` (ramp-up).
        self.distill_ramp = 1.0
        self._build_momentum(queue_size, momentum, distill_alpha, embed_dim)

    # ---------------------------------------------------------- momentum copies
    def _build_momentum(self, queue_size: int, momentum: float, distill_alpha: float, embed_dim: int) -> None:
        """The momentum copies and the ITC queue, where an ITC loss and a queue ask for them,
        and the distillation weight that reads them."""
        if not 0 <= distill_alpha < 1:
            raise ValueError(f'distill_alpha must be in [0, 1), got {distill_alpha}')
        self.distill_alpha = distill_alpha
        self.use_momentum = self.itc_loss is not None and queue_size > 0
        if distill_alpha > 0 and not self.use_momentum:
            raise ValueError('distill_alpha > 0 needs momentum encoders: an ITC loss and queue_size > 0')
        if self.use_momentum:
            for name, sources in MOMENTUM_SOURCES.items():
                setattr(self, name, MomentumCopy(self._momentum_source(sources), momentum))
            self.queue = FeatureQueue(queue_size, embed_dim)
            # a checkpoint without momentum copies gives them the weights it gives their sources
            self.register_load_state_dict_pre_hook(_momentum_keys_from_sources)

    def _momentum_source(self, names: tuple[str, ...]) -> nn.ModuleList:
        return nn.ModuleList([getattr(self, n) for n in names])

    @torch.no_grad()
    def sync_momentum(self) -> None:
        """Set every momentum copy to the current weights of the modules it follows."""
        for name, sources in MOMENTUM_SOURCES.items() if self.use_momentum else ():
            getattr(self, name).copy_from(self._momentum_source(sources))

    def init_weights(self) -> None:
        """Initialise (and load pretrained weights into) every module, then copy
        the encoders into their momentum copies, as ALBEF does after loading:
        a copy taken at construction would miss the weights loaded here."""
        super().init_weights()
        self.sync_momentum()

    # ---------------------------------------------------------------- inference
    def encode_image(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.retrieval_scores == 'match_head':
            return self.encode_image_for_matching(images)
        return super().encode_image(images)

    def encode_text(self, captions: list[str]) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.retrieval_scores == 'match_head':
            return self.encode_text_for_matching(captions)
        return super().encode_text(captions)

    def encode_image_for_matching(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``emb`` ``(B, E)`` and the backbone ``tokens`` ``(B, 1 + N, Di)``."""
        tokens, emb = self.image_tokens(images)
        return dict(emb=emb, tokens=tokens)

    def encode_text_for_matching(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """``emb`` ``(B, E)``, text ``tokens`` ``(B, max_length, D)`` and their ``mask``
        (padded to the tokenizer's maximum length so that batches concatenate)."""
        device = self.image_proj.weight.device
        batch = self.text_encoder.tokenize(captions, device=device, pad_to_max_length=True)
        tokens, emb = self.text_tokens(batch['input_ids'], batch['attention_mask'])
        return dict(emb=emb, tokens=tokens, mask=batch['attention_mask'])

    def match_scores(
        self, image_feats: dict, text_feats: dict, image_idx: torch.Tensor, text_idx: torch.Tensor
    ) -> torch.Tensor:
        """The fusion head's match probability of each pair, ``pair_batch_size`` pairs per pass."""
        if self.fusion_head is None:
            raise NotImplementedError('this CMPAGL has no fusion head (fusion_head=None): no match scores')
        scores = torch.empty(len(image_idx), device=image_feats['tokens'].device)
        for start in range(0, len(image_idx), max(1, self.pair_batch_size)):
            i = image_idx[start : start + self.pair_batch_size]
            t = text_idx[start : start + self.pair_batch_size]
            text, mask, image = text_feats['tokens'][t], text_feats['mask'][t], image_feats['tokens'][i]
            logits = self.fusion_head.itm_logits(text, mask, image)
            scores[start : start + len(i)] = logits.float().softmax(-1)[:, 1]
        return scores

    def similarity(self, img_feats, txt_feats, progress: bool = False) -> torch.Tensor:
        """Cosine of the embeddings, or the match head's probability for every pair.

        With ``retrieval_scores='match_head'`` every (image, caption) pair runs
        through the fusion encoder, ``pair_batch_size`` pairs at a time.
        """
        if self.retrieval_scores == 'embedding':
            img_emb = img_feats['emb'] if isinstance(img_feats, dict) else img_feats
            txt_emb = txt_feats['emb'] if isinstance(txt_feats, dict) else txt_feats
            return super().similarity(img_emb, txt_emb)
        n_img, n_txt = img_feats['tokens'].shape[0], txt_feats['tokens'].shape[0]
        scores = torch.empty(n_img, n_txt, device=img_feats['tokens'].device)
        bar = Progress(n_img, 'match-head scores: images', bar=progress)  # a log line every 30 s otherwise
        all_txt = torch.arange(n_txt, device=scores.device)
        for i in range(n_img):
            scores[i] = self.match_scores(img_feats, txt_feats, torch.full_like(all_txt, i), all_txt)
            bar.update()
        bar.close()
        return scores

    # ----------------------------------------------------------------- training
    @torch.no_grad()
    def _momentum_embeddings(self, images, input_ids, mask) -> tuple[torch.Tensor, torch.Tensor]:
        for name, sources in MOMENTUM_SOURCES.items():
            getattr(self, name).update(self._momentum_source(sources))
        backbone_m, image_proj_m = self.momentum_image.module
        text_m, text_proj_m = self.momentum_text.module
        img_m = F.normalize(image_proj_m(backbone_m(images)[:, 0]), dim=-1)
        txt_m = F.normalize(text_proj_m(self.pool_text(text_m(input_ids, mask), mask)), dim=-1)
        return img_m, txt_m

    def loss(self, inputs: torch.Tensor, data_samples: dict) -> dict[str, torch.Tensor]:
        """The four losses of a batch.

        Nothing in a single-process step waits for the device: captions are
        tokenised and MLM-masked on the host, the masked positions reach the
        fusion head as indices, and the ITM check that every pair has a
        negative reads the host copies of the ids (``data_samples['host']``).
        """
        device = inputs.device
        image_ids = data_samples['image_id']
        pad = get_world_size() > 1  # one caption length on every rank: the ITM candidates are all-gathered
        host = self.text_encoder.tokenize(data_samples['caption'], device='cpu', pad_to_max_length=pad)
        ids, mask = (host[k].to(device, non_blocking=True) for k in ('input_ids', 'attention_mask'))
        img_tokens, img_emb = self.image_tokens(inputs)
        txt_tokens, txt_emb = self.text_tokens(ids, mask)
        losses: dict[str, torch.Tensor] = {}

        if self.itc_loss is not None:
            if self.use_momentum:
                img_m, txt_m = self._momentum_embeddings(inputs, ids, mask)
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
            else:
                losses['loss_itc'] = self.itc_loss(img_emb, txt_emb, image_ids)
        if self.triplet_loss is not None:
            losses['loss_triplet'] = self.triplet_loss(img_emb, txt_emb, image_ids)
        if self.itm_loss is not None:
            host_ids = data_samples.get('host', {}).get('image_id')
            losses['loss_itm'] = self._itm(
                img_tokens, txt_tokens, ids, mask, img_emb, txt_emb, image_ids, host['input_ids'], host_ids
            )
        if self.mlm_loss is not None:
            losses['loss_mlm'] = self._mlm(img_tokens, host['input_ids'], host['attention_mask'], mask)
        return losses

    def _mlm(self, img_tokens, host_ids, host_mask, mask) -> torch.Tensor:
        """MLM: masking drawn on the host (torch's CPU generator), predictions at the masked tokens."""
        tok = self.text_encoder.tokenizer
        masked, labels = self.mlm_loss.mask_tokens(
            host_ids,
            host_mask,
            tok.mask_token_id,
            tok.vocab_size,
            (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id),
        )
        positions = torch.nonzero(labels.flatten() != -100).squeeze(1)  # (M,) flat indices, on the host
        device = img_tokens.device
        masked, positions, targets = (
            t.to(device, non_blocking=True) for t in (masked, positions, labels.flatten()[positions])
        )
        masked_tokens = self.text_encoder(masked, mask)
        logits = self.fusion_head.mlm_logits(masked_tokens, mask, img_tokens, positions=positions)  # (M, V)
        return self.mlm_loss(logits, targets)

    def _itm(
        self, img_tokens, txt_tokens, input_ids, mask, img_emb, txt_emb, image_ids, host_input_ids, host_image_ids
    ) -> torch.Tensor:
        """ITM over B positives, B (image, hard negative text) and B (hard negative image, text).

        With several processes the negatives come from the batches of every
        rank (ALBEF): embeddings, ids and captions are all-gathered, and the
        tokens are all-gathered with their gradient.
        """
        temp = self.itc_loss.temp.clamp(*self.itc_loss.temp_range) if self.itc_loss is not None else 1.0
        cand_img_tokens, cand_txt_tokens, cand_mask = img_tokens, txt_tokens, mask
        cand_img_emb, cand_txt_emb, cand_ids, cand_input_ids = img_emb, txt_emb, image_ids, input_ids
        distributed = get_world_size() > 1
        if distributed:  # every rank holds a batch of the same size (DefaultSampler pads)
            cand_img_tokens = torch.cat(all_gather_with_grad(img_tokens.contiguous()))
            cand_txt_tokens = torch.cat(all_gather_with_grad(txt_tokens.contiguous()))
            cand_img_emb, cand_txt_emb, cand_ids, cand_input_ids, cand_mask = (
                torch.cat(all_gather(t.detach().contiguous())) for t in (img_emb, txt_emb, image_ids, input_ids, mask)
            )
        with torch.no_grad():
            sims_i2t = img_emb @ cand_txt_emb.T / temp  # (B, W*B): local images vs every caption
            sims_t2i = txt_emb @ cand_img_emb.T / temp  # (B, W*B): local captions vs every image
            if distributed or host_image_ids is None:
                invalid = _same_image_or_caption(image_ids, cand_ids, input_ids, cand_input_ids)
            else:  # from the host copies: checking it does not wait for the device
                invalid = _same_image_or_caption(host_image_ids, host_image_ids, host_input_ids, host_input_ids)
        self.itm_loss.check_negatives(invalid)
        invalid = invalid.to(img_emb.device, non_blocking=True)
        neg_txt = self.itm_loss.draw(sims_i2t, invalid, check=False)
        neg_img = self.itm_loss.draw(sims_t2i, invalid, check=False)
        text = torch.cat([txt_tokens, cand_txt_tokens[neg_txt], txt_tokens])  # (3B, L, D)
        text_mask = torch.cat([mask, cand_mask[neg_txt], mask])
        image = torch.cat([img_tokens, img_tokens, cand_img_tokens[neg_img]])  # (3B, 1 + N, Di)
        logits = self.fusion_head.itm_logits(text, text_mask, image)
        B = img_emb.shape[0]
        labels = torch.cat([torch.ones(B, dtype=torch.long), torch.zeros(2 * B, dtype=torch.long)])
        return self.itm_loss(logits, labels.to(logits.device, non_blocking=True))


def _momentum_keys_from_sources(
    model: CMPAGL, state_dict: dict, prefix: str, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
) -> None:
    """Load-state-dict pre-hook: where ``state_dict`` holds an encoder but not its
    momentum copy (a checkpoint of a model without momentum encoders, a partial
    one), the copy gets the same tensors, so that it equals its source after
    the load. Copies that the checkpoint holds (resuming; fine-tuning from a
    CMPAGL checkpoint, as ALBEF does) load as saved."""
    filled = 0
    for name, sources in MOMENTUM_SOURCES.items():
        for i, source in enumerate(sources):
            for key in getattr(model, source).state_dict(keep_vars=True):
                src, dst = f'{prefix}{source}.{key}', f'{prefix}{name}.module.{i}.{key}'
                if dst not in state_dict and src in state_dict:
                    state_dict[dst] = state_dict[src]
                    filled += 1
    if filled:
        MMLogger.get_current_instance().info(
            f'The checkpoint has no momentum copy of {filled} encoder tensors: '
            'the momentum encoders start from the loaded encoder weights'
        )


def _same_image_or_caption(
    image_ids: torch.Tensor, cand_image_ids: torch.Tensor, input_ids: torch.Tensor, cand_input_ids: torch.Tensor
) -> torch.Tensor:
    """``(B, M)`` True where pair ``i`` and candidate ``j`` show the same image or have
    identical captions (never an ITM negative)."""
    same_image = image_ids[:, None] == cand_image_ids[None, :]
    same_text = (input_ids[:, None, :] == cand_input_ids[None, :, :]).all(-1)
    return same_image | same_text
