"""CMPAGL: pre-aligned global-local retrieval (the paper's full model)."""

from __future__ import annotations

import os

import torch
from mmengine.dist import all_gather, get_world_size
from torch.distributed.nn.functional import all_gather as all_gather_with_grad

from rsretrieval.registry import FUSION_HEADS, LOSSES, MODELS
from rsretrieval.utils.progress import Progress

from .joint_embedding import JointEmbeddingRetriever
from .pre_alignment import PreAlignment, load_pre_alignment_state, nest_checkpoint


@MODELS.register_module()
class CMPAGL(JointEmbeddingRetriever):
    """Image encoder + text encoder pre-aligned by ITC and the optimized triplet
    loss, then a fusion encoder trained with ITM (hard negatives) and MLM.

    Total loss ``L = L_itc + L_triplet + L_itm + L_mlm`` (each weighted by its
    loss config's ``loss_weight``; a loss set to ``None`` is switched off, for
    the ablations). ITC and the triplet loss are the :class:`PreAlignment`
    component (``pre_alignment``). Inference runs only the two encoders and
    projections: similarity is the cosine of the projected global image token
    and the projected text ``[CLS]``.

    Args:
        backbone: ``BACKBONES`` config (Gswin in the paper).
        text_encoder: ``TEXT_ENCODERS`` config (the first half of BERT).
        fusion_head: ``FUSION_HEADS`` config (the second half, with
            cross-attention); built with ``image_width`` = the backbone's width.
        embed_dim: Width of the joint embedding space.
        text_pooling: ``'cls'`` (the paper) or ``'mean'`` (see
            :class:`JointEmbeddingRetriever`).
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
        self._build_fusion_head(fusion_head, itm, mlm, retrieval_scores)
        self.retrieval_scores, self.pair_batch_size = retrieval_scores, pair_batch_size
        self.pre_alignment = PreAlignment(self, itc, triplet, queue_size, momentum, distill_alpha)
        if not self.pre_alignment.has_losses:
            # no loss trains the embedding projections (Std-MI): frozen, so that no
            # parameter goes without a gradient (DDP needs no find_unused_parameters)
            self.image_proj.requires_grad_(False)
            self.text_proj.requires_grad_(False)
        self.itm_loss = LOSSES.build(itm) if itm else None
        self.mlm_loss = LOSSES.build(mlm) if mlm else None
        if not (self.pre_alignment.has_losses or self.itm_loss or self.mlm_loss):
            raise ValueError('CMPAGL needs at least one of itc, triplet, itm, mlm')
        if self.mlm_loss is not None:
            self.fusion_head.tie_word_embeddings(self.text_encoder.bert.embeddings.word_embeddings)
        self.register_load_state_dict_pre_hook(load_pre_alignment_state)

    def _build_fusion_head(self, fusion_head: dict | None, itm: dict | None, mlm: dict | None, scores: str) -> None:
        """The fusion head, with only the heads that a loss (or the retrieval scores) use."""
        head_args = dict(
            image_width=self.backbone.out_channels,
            with_match_head=bool(itm) or scores == 'match_head',
            with_mlm_head=bool(mlm),
        )
        self.fusion_head = FUSION_HEADS.build(fusion_head, default_args=head_args) if fusion_head else None
        if (itm or mlm) and self.fusion_head is None:
            raise ValueError('ITM and MLM need a fusion_head')
        if scores not in ('embedding', 'match_head'):
            raise ValueError(f"retrieval_scores must be 'embedding' or 'match_head', got {scores!r}")
        if scores == 'match_head' and self.fusion_head is None:
            raise ValueError("retrieval_scores='match_head' needs a fusion_head")

    def init_weights(self) -> None:
        """Initialise (and load pretrained weights into) every module, then copy
        the encoders into their momentum copies, as ALBEF does after loading:
        a copy taken at construction would miss the weights loaded here."""
        super().init_weights()
        self.pre_alignment.sync_momentum(self)

    def adapt_checkpoint(self, checkpoint: dict, path: str | os.PathLike) -> dict:
        """A loaded checkpoint with its pre-alignment keys nested (either layout loads;
        see :func:`~.pre_alignment.nest_pre_alignment_keys`)."""
        return nest_checkpoint(checkpoint)

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
        device = self.weights_device()
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
    def loss(self, inputs: torch.Tensor, data_samples: dict) -> dict[str, torch.Tensor]:
        """The four losses of a batch.

        Nothing in a single-process step waits for the device: captions are
        tokenised and MLM-masked on the host, the masked positions reach the
        fusion head as indices, and the ITM check that every pair has a
        negative reads the host copies of the ids (``data_samples['ids_on_cpu']``).
        """
        image_ids = data_samples['image_id']
        # padded alike on every rank with several processes: the ITM candidates are all-gathered
        cpu_tokens, ids, mask = self.training_tokens(data_samples['caption'], inputs.device)
        img_tokens, img_emb = self.image_tokens(inputs)
        txt_tokens, txt_emb = self.text_tokens(ids, mask)
        losses = self.pre_alignment(self, inputs, ids, mask, img_emb, txt_emb, image_ids)
        if self.itm_loss is not None:
            cpu_image_ids = data_samples.get('ids_on_cpu', {}).get('image_id')
            losses['loss_itm'] = self._itm(
                img_tokens, txt_tokens, ids, mask, img_emb, txt_emb, image_ids, cpu_tokens['input_ids'], cpu_image_ids
            )
        if self.mlm_loss is not None:
            losses['loss_mlm'] = self._mlm(img_tokens, cpu_tokens['input_ids'], cpu_tokens['attention_mask'], mask)
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
        itc = self.pre_alignment.itc_loss
        temp = itc.temp.clamp(*itc.temp_range) if itc is not None else 1.0
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


def _same_image_or_caption(
    image_ids: torch.Tensor, cand_image_ids: torch.Tensor, input_ids: torch.Tensor, cand_input_ids: torch.Tensor
) -> torch.Tensor:
    """``(B, M)`` True where pair ``i`` and candidate ``j`` show the same image or have
    identical captions (never an ITM negative)."""
    same_image = image_ids[:, None] == cand_image_ids[None, :]
    same_text = (input_ids[:, None, :] == cand_input_ids[None, :, :]).all(-1)
    return same_image | same_text
