"""Gswin: Swin-style window attention with a generated global window (CMPAGL §III-B).

Every stage builds one *global window* from its input with the GWG module (a
small convolutional pyramid that halves the map until it is window x window).
Every block then runs, on the local windows:

    F_L  = x + LW-MSA(LN(x))                              local window self-attention
    F_SL = F_L + SLW-MSA(LN(F_L))                         shifted windows, Swin's mask
    F_GL = F_SL + CA(LN(F_L), G) + CA(LN(F_SL), G)        global-local cross-attention
    out  = F_GL + MLP(LN(F_GL))

with ``G`` the global window shared by all windows of an image and by all blocks
of the stage. There is one residual stream: Eq. 6 sums the two cross-attention
outputs, and each is added once to the stream (adding ``F_L`` and ``F_SL`` both
would double the stream at every block). "w/o SLW" drops the shifted branch and
its cross-attention (``F_GL = F_L + CA(LN(F_L), G)``); "w/o GW" drops both
cross-attentions (``F_GL = F_SL``). By default the global window supplies the queries and the local
window the keys and values (GCViT's global query); the output of query ``i`` is
added to local position ``i``, which is why the global window has the local
window's size. The shifted branch is shifted back before the sum.

Shapes use ``B`` batch, ``H, W`` the stage map, ``C`` channels, ``ws`` the window
size, ``N = ws * ws`` tokens per window, ``nW`` windows per image.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models.swin_transformer import get_relative_position_index
from torch import nn

from rsretrieval.registry import BACKBONES
from rsretrieval.weights.loading import ConciseInitInfo, LoadReport, load_pretrained
from rsretrieval.weights.pretrained import resolve_pretrained

from .swin import swin_release_to_timm


# --------------------------------------------------------------------------- windows
def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, N, C), windows in row-major order."""
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, (H // ws) * (W // ws), ws * ws, C)


def window_reverse(windows: torch.Tensor, ws: int, H: int, W: int) -> torch.Tensor:
    """(B, nW, N, C) -> (B, H, W, C); inverse of :func:`window_partition`."""
    B, _, _, C = windows.shape
    x = windows.view(B, H // ws, W // ws, ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)


def shifted_window_mask(H: int, W: int, ws: int, shift: int, device: torch.device) -> torch.Tensor:
    """Swin's mask for cyclically shifted windows: (nW, N, N), 0 or -inf-like.

    Entry ``[w, i, j]`` is ``-100`` when tokens ``i`` and ``j`` of window ``w``
    come from different regions of the unshifted map (they only share the
    window because of the cyclic roll).
    """
    region = torch.zeros(1, H, W, 1, device=device)
    label = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            region[:, hs, wsl, :] = label
            label += 1
    ids = window_partition(region, ws).squeeze(0).squeeze(-1)  # (nW, N)
    mask = ids[:, None, :] - ids[:, :, None]  # (nW, N, N)
    return mask.ne(0).float() * -100.0


def shifted_window_order(H: int, W: int, ws: int, shift: int, device: torch.device) -> torch.Tensor:
    """Where each token of the shifted windows sits in the unshifted windows: (H*W,).

    With ``x`` in window layout flattened to ``(B, nW * N, C)``,
    ``x[:, order]`` equals ``window_partition(roll(window_reverse(x), -shift), ws)``:
    one gather instead of a reverse, a roll and a partition.
    """
    grid = torch.arange(H * W, device=device).view(1, H, W, 1)
    unshifted = window_partition(grid, ws).flatten()  # window-layout position -> map index
    shifted = window_partition(torch.roll(grid, (-shift, -shift), (1, 2)), ws).flatten()
    position = torch.empty_like(unshifted)
    position[unshifted] = torch.arange(H * W, device=device)  # map index -> window-layout position
    return position[shifted]


class _PermuteTokens(torch.autograd.Function):
    """``x[:, order]`` on (B, T, C) whose gradient is the inverse gather (not a scatter-add)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        ctx.inverse = inverse
        return x.index_select(1, order)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return grad.index_select(1, ctx.inverse), None, None


@dataclass(frozen=True)
class ShiftedWindows:
    """How a stage's shifted branch sees its map: Swin's mask and the token orders.

    Attributes:
        mask: (nW, N, N) additive mask of the shifted windows; None without a shift.
        to_shifted: (H*W,) gather from window layout to shifted-window layout.
        to_windows: (H*W,) the inverse gather.
    """

    mask: torch.Tensor | None
    to_shifted: torch.Tensor | None
    to_windows: torch.Tensor | None

    @classmethod
    def build(cls, H: int, W: int, ws: int, shift: int, device: torch.device) -> ShiftedWindows:
        if not shift:
            return cls(None, None, None)
        order = shifted_window_order(H, W, ws, shift, device)
        return cls(shifted_window_mask(H, W, ws, shift, device), order, torch.argsort(order))

    @staticmethod
    def _gather(x: torch.Tensor, order: torch.Tensor | None, inverse: torch.Tensor | None) -> torch.Tensor:
        if order is None:
            return x
        B, nW, N, C = x.shape
        return _PermuteTokens.apply(x.reshape(B, nW * N, C), order, inverse).view(B, nW, N, C)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """(B, nW, N, C) windows -> the shifted windows of the same map."""
        return self._gather(x, self.to_shifted, self.to_windows)

    def unshift(self, x: torch.Tensor) -> torch.Tensor:
        """(B, nW, N, C) shifted windows -> the unshifted windows of the same map."""
        return self._gather(x, self.to_windows, self.to_shifted)


# --------------------------------------------------------------------------- attention
class RelativePositionBias(nn.Module):
    """Learned bias per head for each relative offset inside a window: (h, N, N)."""

    def __init__(self, window_size: int, num_heads: int) -> None:
        super().__init__()
        self.window_size = (window_size, window_size)  # read by the table resize rule
        self.table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer('index', get_relative_position_index(window_size, window_size), persistent=False)
        trunc_normal_(self.table, std=0.02)

    def forward(self) -> torch.Tensor:
        N = self.index.shape[0]
        return self.table[self.index.view(-1)].view(N, N, -1).permute(2, 0, 1)  # (h, N, N)


def _matmul_attention_is_faster(q: torch.Tensor) -> bool:
    """Whether two batched matmuls beat SDPA for these 64-token windows.

    On CPUs in bf16 without autograd they do: PyTorch's flash kernel pays a
    fixed cost per (window, head) that dominates at 64 tokens. Measured on a
    2-core AMD EPYC (Zen 4), batch 32 at 256 px: the first stage's attention
    about 2x faster, the encoder 1.1-1.35x over three runs; embeddings 0.99997
    cosine to fp32 either way.
    The scores are then rounded to bf16, as in any bf16 matmul. fp32 (SDPA is
    faster there) and GPUs (flash kernels) keep SDPA.
    """
    return q.device.type == 'cpu' and q.dtype == torch.bfloat16 and not torch.is_grad_enabled()


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, keep: bool):
    """Attention with an additive bias; with ``keep`` also return the attention weights."""
    bias = bias.to(q.dtype)
    if not (keep or _matmul_attention_is_faster(q)):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias), None
    attn = (q @ k.transpose(-2, -1)).mul_(q.shape[-1] ** -0.5).add_(bias).softmax(dim=-1)
    return attn @ v, (attn if keep else None)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with relative position bias.

    Args:
        dim: Channels ``C``.
        num_heads: Heads ``h``.
        window_size: ``ws``.
        qkv_bias: Bias on the qkv projection.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rel_bias = RelativePositionBias(window_size, num_heads)
        self.keep_attention = False
        self.attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, nW, N, C); mask: (nW, N, N) or None
        B, nW, N, C = x.shape
        h = self.num_heads
        qkv = self.qkv(x).view(B, nW, N, 3, h, C // h).permute(3, 0, 1, 4, 2, 5)  # (3, B, nW, h, N, d)
        # Windows and heads are independent: fold them into one "head" axis so that
        # the (nW, h, N, N) bias broadcasts over the batch without a copy.
        q, k, v = (t.reshape(B, nW * h, N, C // h) for t in qkv)
        bias = self.rel_bias()[None]  # (1, h, N, N)
        if mask is not None:
            bias = bias + mask[:, None]  # (nW, h, N, N)
        bias = bias.expand(nW, h, N, N).reshape(1, nW * h, N, N)
        out, attn = _attend(q, k, v, bias, self.keep_attention)
        self.attention = None if attn is None else attn.detach().view(B, nW, h, N, N)
        out = out.view(B, nW, h, N, C // h).transpose(2, 3).reshape(B, nW, N, C)
        return self.proj(out)


class GlobalLocalCrossAttention(nn.Module):
    """Cross-attention between every local window and the image's global window.

    ``cross_query='global'``: queries from the global window, keys/values from
    the local window; output position ``i`` is what global query ``i`` gathered
    from the local window. ``cross_query='local'``: the reverse roles.

    Args:
        dim: Channels ``C``.
        num_heads: Heads ``h``.
        window_size: ``ws`` (global and local windows have ``N = ws^2`` tokens).
        cross_query: ``'global'`` or ``'local'``.
        qkv_bias: Bias on the projections.
    """

    def __init__(
        self, dim: int, num_heads: int, window_size: int, cross_query: str = 'global', qkv_bias: bool = True
    ) -> None:
        super().__init__()
        if cross_query not in ('global', 'local'):
            raise ValueError(f"cross_query must be 'global' or 'local', got {cross_query!r}")
        self.num_heads, self.cross_query = num_heads, cross_query
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rel_bias = RelativePositionBias(window_size, num_heads)
        self.keep_attention = False
        self.attention: torch.Tensor | None = None

    def forward(
        self, local: torch.Tensor, global_window: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        # local: (B, nW, N, C); global_window: (B, N, C); mask: (nW, N, N) or None -> (B, nW, N, C)
        B, nW, N, C = local.shape
        h, d = self.num_heads, C // self.num_heads
        # The global window is projected once per image, then shared by its nW windows.
        if self.cross_query == 'global':
            q = self.q(global_window)[:, None].expand(B, nW, N, C)
            kv = self.kv(local)
        else:
            q = self.q(local)
            kv = self.kv(global_window)[:, None].expand(B, nW, N, 2 * C)
        q = q.reshape(B, nW, N, h, d).transpose(2, 3).reshape(B, nW * h, N, d)
        kv = kv.reshape(B, nW, N, 2, h, d).permute(3, 0, 1, 4, 2, 5)  # (2, B, nW, h, N, d)
        k, v = (t.reshape(B, nW * h, N, d) for t in kv)
        bias = self.rel_bias()[None]
        if mask is not None:
            bias = bias + mask[:, None]
        bias = bias.expand(nW, h, N, N).reshape(1, nW * h, N, N)
        out, attn = _attend(q, k, v, bias, self.keep_attention)
        self.attention = None if attn is None else attn.detach().view(B, nW, h, N, N)
        out = out.view(B, nW, h, N, d).transpose(2, 3).reshape(B, nW, N, C)
        return self.proj(out)


# --------------------------------------------------------------------------- global window
class GWGLayer(nn.Module):
    """One global-window-generation layer (paper Eq. 4-5): (B, C, H, W) -> (B, C, H/2, W/2).

    ``x1 = conv3x3_b(GELU(conv3x3_a(conv1x1_a(F))))``; ``x = [x1, conv1x1_b(F)]``;
    ``out = maxpool3x3/2(conv1x1_c(x) + F)``. The 3x3 convolutions are depthwise
    by default (as GCViT's feature extractor), dense with ``depthwise=False``.
    """

    def __init__(self, dim: int, depthwise: bool = True) -> None:
        super().__init__()
        groups = dim if depthwise else 1
        self.conv1x1_a = nn.Conv2d(dim, dim, 1)
        self.conv3x3_a = nn.Conv2d(dim, dim, 3, padding=1, groups=groups)
        self.act = nn.GELU()
        self.conv3x3_b = nn.Conv2d(dim, dim, 3, padding=1, groups=groups)
        self.conv1x1_b = nn.Conv2d(dim, dim, 1)
        self.conv1x1_c = nn.Conv2d(2 * dim, dim, 1)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv3x3_b(self.act(self.conv3x3_a(self.conv1x1_a(x))))
        fused = self.conv1x1_c(torch.cat([x1, self.conv1x1_b(x)], dim=1))
        return self.pool(fused + x)


class GlobalWindowGenerator(nn.Module):
    """Stack of ``log2(H / ws)`` GWG layers, then an adaptive pool if needed.

    Output: (B, N, C) tokens of one ws x ws global window per image. When the
    stage map already equals the window, the map itself is the global window.
    """

    def __init__(self, dim: int, resolution: int, window_size: int, depthwise: bool = True) -> None:
        super().__init__()
        self.window_size = window_size
        n_layers = int(math.floor(math.log2(resolution / window_size))) if resolution > window_size else 0
        self.layers = nn.Sequential(*(GWGLayer(dim, depthwise) for _ in range(n_layers)))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, H, W, C) -> (B, N, C)
        g = self.layers(x.permute(0, 3, 1, 2))  # (B, C, H', W')
        if g.shape[-1] < self.window_size or g.shape[-2] < self.window_size:
            raise ValueError(
                f'stage map {tuple(x.shape[1:3])} is smaller than the input size the global-window '
                'generator was built for: build Gswin with img_size no larger than the input'
            )
        if g.shape[-2:] != (self.window_size, self.window_size):
            g = F.adaptive_max_pool2d(g, self.window_size)
        return self.norm(g.flatten(2).transpose(1, 2))


# --------------------------------------------------------------------------- block and stage
@dataclass(frozen=True)
class GswinBranches:
    """The branches of a Gswin block and how they are built (the paper's ablation switches).

    Attributes:
        use_global_window: GWG + the two GLW-CA branches ("w/o GW" when False).
        use_shifted_window: The SLW branch ("w/o SLW" when False).
        cross_query: ``'global'`` or ``'local'`` queries in GLW-CA.
        share_cross_attn: One GLW-CA module for both branches of a block.
        gwg_depthwise: Depthwise 3x3 convolutions in GWG.
    """

    use_global_window: bool = True
    use_shifted_window: bool = True
    cross_query: str = 'global'
    share_cross_attn: bool = True
    gwg_depthwise: bool = True


class GswinBlock(nn.Module):
    """One Gswin transformer block (Eq. 6); see the module docstring.

    Args:
        dim: Channels ``C``.
        num_heads: Heads.
        window_size: ``ws``.
        shift_size: Shift of the SLW branch (0 when the map is one window).
        mlp_ratio: MLP hidden width / C.
        drop_path: Stochastic depth rate of each residual branch.
        branches: The branches present (default: all, one shared GLW-CA module).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        branches: GswinBranches | None = None,
    ) -> None:
        super().__init__()
        branches = branches or GswinBranches()
        self.shift_size = shift_size  # read by the attention-map drawing (rsretrieval.visualization)
        self.use_global_window, self.use_shifted_window = branches.use_global_window, branches.use_shifted_window
        self.norm_local = nn.LayerNorm(dim)
        self.local_attn = WindowAttention(dim, num_heads, window_size)
        if self.use_shifted_window:
            self.norm_shifted = nn.LayerNorm(dim)
            self.shifted_attn = WindowAttention(dim, num_heads, window_size)
        if self.use_global_window:
            self.norm_cross = nn.LayerNorm(dim)
            self.cross_attn = GlobalLocalCrossAttention(dim, num_heads, window_size, branches.cross_query)
            if self.use_shifted_window:
                self.cross_attn_shifted = (
                    self.cross_attn
                    if branches.share_cross_attn
                    else GlobalLocalCrossAttention(dim, num_heads, window_size, branches.cross_query)
                )
        self.cross_attention: torch.Tensor | None = None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, global_window: torch.Tensor | None, shifted: ShiftedWindows) -> torch.Tensor:
        # x: (B, nW, N, C) windows of the stage map; global_window: (B, N, C) or None.
        # The stream stays in window layout; only the shifted branch is gathered into
        # shifted windows and back (token-wise norms commute with the gathers).
        f_local = x + self.drop_path(self.local_attn(self.norm_local(x)))
        stream = f_local
        if self.use_shifted_window:
            rolled = shifted.shift(f_local)
            f_shifted_rolled = rolled + self.drop_path(self.shifted_attn(self.norm_shifted(rolled), shifted.mask))
            stream = shifted.unshift(f_shifted_rolled)  # F_SL
        if self.use_global_window:
            cross = self.cross_attn(self.norm_cross(f_local), global_window)
            # kept before the shifted branch runs: by default both branches share one module
            self.cross_attention = self.cross_attn.attention
            stream = stream + self.drop_path(cross)
            if self.use_shifted_window:
                normed = self.norm_cross(f_shifted_rolled)
                cross = self.cross_attn_shifted(normed, global_window, shifted.mask)
                stream = stream + self.drop_path(shifted.unshift(cross))
        return stream + self.drop_path(self.mlp(self.norm_mlp(stream)))

    def attention_maps(self) -> dict[str, torch.Tensor | None]:
        """The attention weights of the latest forward, by branch (None where not kept)."""
        maps = {name: m.attention for name, m in self.attention_modules().items()}
        if 'cross' in maps:
            maps['cross'] = self.cross_attention
        return maps

    def attention_modules(self) -> dict[str, nn.Module]:
        """The attention modules of this block, by branch name."""
        mods = {'local': self.local_attn}
        if self.use_shifted_window:
            mods['shifted'] = self.shifted_attn
        if self.use_global_window:
            mods['cross'] = self.cross_attn
            if self.use_shifted_window:
                mods['cross_shifted'] = self.cross_attn_shifted
        return mods


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat + linear: (B, H, W, C) -> (B, H/2, W/2, 2C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        x = x.view(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).reshape(B, H // 2, W // 2, 4 * C)
        return self.reduction(self.norm(x))


class GswinStage(nn.Module):
    """GWG once, ``depth`` Gswin blocks sharing its global window, optional merging."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        resolution: int,
        window_size: int,
        drop_path: list[float],
        downsample: bool,
        branches: GswinBranches,
        mlp_ratio: float,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        shift = window_size // 2 if resolution > window_size else 0
        self.shift_size = shift
        self.gwg = (
            GlobalWindowGenerator(dim, resolution, window_size, branches.gwg_depthwise)
            if branches.use_global_window
            else None
        )
        self.blocks = nn.ModuleList(
            GswinBlock(dim, num_heads, window_size, shift, mlp_ratio, drop_path[i], branches) for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None
        self._shifted: dict[tuple, ShiftedWindows] = {}

    def shifted_windows(self, H: int, W: int, device: torch.device) -> ShiftedWindows:
        """The mask and token orders of the shifted branch for an ``H x W`` map (cached)."""
        key = (H, W, device)
        if key not in self._shifted:
            self._shifted[key] = ShiftedWindows.build(H, W, self.window_size, self.shift_size, device)
        return self._shifted[key]

    def run_blocks(self, x: torch.Tensor, global_window: torch.Tensor | None) -> torch.Tensor:
        """The stage's blocks alone: (B, H, W, C) -> (B, H, W, C), with the global window given."""
        _, H, W, _ = x.shape
        shifted = self.shifted_windows(H, W, x.device)
        windows = window_partition(x, self.window_size)  # (B, nW, N, C) for every block of the stage
        for block in self.blocks:
            windows = block(windows, global_window, shifted)
        return window_reverse(windows, self.window_size, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, H, W, C) -> (B, H/2, W/2, 2C) or (B, H, W, C) for the last stage
        global_window = self.gwg(x) if self.gwg is not None else None  # (B, N, C), shared by the blocks
        x = self.run_blocks(x, global_window)
        return self.downsample(x) if self.downsample is not None else x


# --------------------------------------------------------------------------- backbone
@BACKBONES.register_module()
class Gswin(ConciseInitInfo, BaseModule):
    """The Gswin image encoder of CMPAGL.

    Output: ``(B, 1 + N, 8C)``, the global token first, then the ``N = (H/32)(W/32)``
    tokens of the last stage (after the final norm); ``out_channels = 8C``.

    Args:
        img_size: Input size the model is built for; every stage map must be a
            multiple of ``window_size`` (patch 4, window 8: multiples of 256).
        patch_size: Patch embedding stride.
        in_channels: Image channels.
        embed_dim: ``C``.
        depths: Blocks per stage.
        num_heads: Heads per stage.
        window_size: Local and global window size ``ws``.
        mlp_ratio: MLP hidden width / C.
        drop_path_rate: Stochastic depth, linearly increasing over blocks.
        use_global_window: GWG + GLW-CA ("w/o GW" ablation when False).
        use_shifted_window: The SLW branch ("w/o SLW" ablation when False).
        cross_query: ``'global'`` (global window queries the local one) or ``'local'``.
        share_cross_attn: One GLW-CA module for both branches of a block.
        gwg_depthwise: Depthwise 3x3 convolutions in GWG.
        global_token: ``'mean'`` (average of the last tokens) or ``'first'``
            (the literal 0-th token).
        pretrained: Weights loaded by :meth:`init_weights`: a name known to
            :func:`~rsretrieval.utils.resolve_pretrained` or a local file of a
            Gswin or a timm Swin (mapped by :func:`swin_to_gswin`; relative-position
            tables resized to ``window_size``). The parts Gswin adds
            (:meth:`new_in_architecture`) start as initialised; any other tensor the
            file does not fill is an error.
        init_cfg: mmengine initialisation config.

    Attributes:
        load_report: What the latest :meth:`init_weights` loaded (None before, or
            without ``pretrained``).
    """

    load_report: LoadReport | None = None

    def __init__(
        self,
        img_size: int = 256,
        patch_size: int = 4,
        in_channels: int = 3,
        embed_dim: int = 96,
        depths: tuple[int, ...] = (1, 1, 3, 1),
        num_heads: tuple[int, ...] = (3, 6, 12, 24),
        window_size: int = 8,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        use_global_window: bool = True,
        use_shifted_window: bool = True,
        cross_query: str = 'global',
        share_cross_attn: bool = True,
        gwg_depthwise: bool = True,
        global_token: str = 'mean',
        pretrained: str | os.PathLike | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(depths) != len(num_heads):
            raise ValueError(f'depths {depths} and num_heads {num_heads} differ in length')
        if global_token not in ('mean', 'first'):
            raise ValueError(f"global_token must be 'mean' or 'first', got {global_token!r}")
        self.patch_size, self.window_size, self.num_stages = patch_size, window_size, len(depths)
        self.check_input_size(img_size, img_size)
        self.global_token, self.pretrained = global_token, pretrained
        self.use_global_window, self.use_shifted_window = use_global_window, use_shifted_window
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)
        self.patch_norm = nn.LayerNorm(embed_dim)
        branches = GswinBranches(use_global_window, use_shifted_window, cross_query, share_cross_attn, gwg_depthwise)
        self.stages = self._build_stages(
            img_size // patch_size, embed_dim, depths, num_heads, mlp_ratio, drop_path_rate, branches
        )
        self.out_channels = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.out_channels)
        self.apply(self._init_linear)
        # The last block keeps its attention weights for get_attention_maps().
        for module in self.stages[-1].blocks[-1].attention_modules().values():
            module.keep_attention = True

    def _build_stages(
        self,
        resolution: int,
        embed_dim: int,
        depths: tuple[int, ...],
        num_heads: tuple[int, ...],
        mlp_ratio: float,
        drop_path_rate: float,
        branches: GswinBranches,
    ) -> nn.ModuleList:
        """One :class:`GswinStage` per entry of ``depths``; each but the last ends
        by halving the map and doubling the width."""
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()  # one rate per block, rising
        stages = nn.ModuleList()
        dim, res = embed_dim, resolution
        for i, depth in enumerate(depths):
            last = i == len(depths) - 1
            block_dpr = dpr[sum(depths[:i]) : sum(depths[: i + 1])]
            stages.append(
                GswinStage(dim, depth, num_heads[i], res, self.window_size, block_dpr, not last, branches, mlp_ratio)
            )
            dim, res = dim * 2, res // 2
        return stages

    @staticmethod
    def _init_linear(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def check_input_size(self, height: int, width: int) -> None:
        """Raise ValueError unless every stage map is a multiple of the window."""
        unit = self.patch_size * self.window_size * 2 ** (self.num_stages - 1)
        if height % unit or width % unit or height <= 0 or width <= 0:
            raise ValueError(
                f'Gswin input {height}x{width} is invalid: height and width must be multiples of '
                f'patch_size * window_size * 2^(stages-1) = {self.patch_size} * {self.window_size} * '
                f'{2 ** (self.num_stages - 1)} = {unit}, so that every stage map divides into windows'
            )

    def new_in_architecture(self) -> dict[str, tuple[str, ...]]:
        """The parameters Gswin adds to Swin, by group (``fnmatch`` over state-dict names).

        A Swin checkpoint cannot fill them: they keep their initialisation. They
        follow the ablation switches: without the global window there are none.
        """
        if not self.use_global_window:
            return {}
        return {
            'global window generator': ('stages.*.gwg.*',),
            'cross-attention': (
                'stages.*.blocks.*.norm_cross.*',
                'stages.*.blocks.*.cross_attn.*',
                'stages.*.blocks.*.cross_attn_shifted.*',
            ),
        }

    def init_weights(self) -> None:
        super().init_weights()
        if self.pretrained is not None:
            path = resolve_pretrained(self.pretrained)
            name = None if Path(str(self.pretrained)).expanduser().resolve() == path else str(self.pretrained)
            self.load_report = load_pretrained(
                self,
                path,
                convert=swin_to_gswin,
                new_in_architecture=self.new_in_architecture(),
                source_name=name,
                labels=SWIN_DROPPED_LABELS,
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, 3, H, W) -> (B, 1 + H/32 * W/32, 8C)
        self.check_input_size(images.shape[-2], images.shape[-1])
        x = self.patch_norm(self.patch_embed(images).permute(0, 2, 3, 1))  # (B, H/4, W/4, C)
        for stage in self.stages:
            x = stage(x)
        tokens = self.norm(x.flatten(1, 2))  # (B, N, 8C)
        global_feature = tokens.mean(1, keepdim=True) if self.global_token == 'mean' else tokens[:, :1]
        return torch.cat([global_feature, tokens], dim=1)

    def get_attention_maps(self) -> dict[str, torch.Tensor]:
        """Attention weights of the last block from the latest forward pass.

        Returns:
            ``{branch: (B, nW, heads, N, N)}`` for the branches present
            (``local``, ``shifted``, ``cross``, ``cross_shifted``); rows are
            queries, columns keys, ``N = ws^2`` tokens in row-major window order.
        """
        maps = self.stages[-1].blocks[-1].attention_maps()
        if any(v is None for v in maps.values()):
            raise RuntimeError('get_attention_maps() needs a forward pass first')
        return maps


# --------------------------------------------------------------------------- Swin weights
_SWIN_BLOCK = re.compile(r'^layers\.(\d+)\.blocks\.(\d+)\.(.+)$')
_SWIN_DOWNSAMPLE = re.compile(r'^layers\.(\d+)\.downsample\.(.+)$')

#: Groups of a Swin checkpoint's tensors that Gswin does not use (after
#: :func:`swin_to_gswin`), as the load report names them; first match wins.
SWIN_DROPPED_LABELS: dict[str, tuple[str, ...]] = {
    'first-block MLP of each Swin pair': ('layers.*.blocks.*.norm2.*', 'layers.*.blocks.*.mlp.*'),
    'shifted-window branch (absent: w/o SLW)': (
        'stages.*.blocks.*.norm_shifted.*',
        'stages.*.blocks.*.shifted_attn.*',
    ),
    'blocks beyond the depths of this Gswin': ('stages.*.blocks.*',),
}


def _swin_block_key(stage: int, block: int, rest: str) -> str | None:
    """Gswin's name for ``layers.{stage}.blocks.{block}.{rest}`` of a Swin, or None."""
    prefix = f'stages.{stage}.blocks.{block // 2}.'
    branch = 'shifted' if block % 2 else 'local'
    module, _, param = rest.partition('.')
    if module == 'norm1':
        return f'{prefix}norm_{branch}.{param}'
    if module == 'attn':
        return f'{prefix}{branch}_attn.' + param.replace('relative_position_bias_table', 'rel_bias.table')
    if block % 2 and module == 'norm2':
        return f'{prefix}norm_mlp.{param}'
    if block % 2 and module == 'mlp':
        return prefix + rest
    return None  # the first block's MLP of a pair: Gswin has one MLP per block


def swin_to_gswin(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a Swin state dict (timm's or the original release's) onto Gswin.

    Swin stacks W-MSA and SW-MSA blocks in pairs; a Gswin block holds both. Swin
    block ``2j`` of a stage gives Gswin block ``j`` its local attention and norm,
    block ``2j + 1`` its shifted attention and norm, MLP and MLP norm (Swin-T's
    depths (2, 2, 6, 2) fill Gswin's (1, 1, 3, 1)). Patch merging ends stage ``i``
    in Gswin, starts stage ``i + 1`` in timm (the original release's layout is
    first renamed to timm's by :func:`~.swin.swin_release_to_timm`). Keys without
    a Gswin counterpart keep their name (the first block's MLP of each pair, the
    classifier head, buffers derived from the window): the loader reports them as
    dropped. A state dict that is not a Swin's (no ``layers.*`` keys, e.g. a Gswin
    checkpoint) passes unchanged.
    """
    if not any(k.startswith('layers.') for k in state):
        return state
    state = swin_release_to_timm(state)
    out = {}
    for key, value in state.items():
        new = None
        if key.startswith('patch_embed.proj.'):
            new = 'patch_embed.' + key[len('patch_embed.proj.') :]
        elif key.startswith('patch_embed.norm.'):
            new = 'patch_norm.' + key[len('patch_embed.norm.') :]
        elif m := _SWIN_DOWNSAMPLE.match(key):
            new = f'stages.{int(m[1]) - 1}.downsample.{m[2]}'
        elif m := _SWIN_BLOCK.match(key):
            new = _swin_block_key(int(m[1]), int(m[2]), m[3])
        out[new or key] = value
    return out
