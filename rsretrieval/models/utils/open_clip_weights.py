"""open_clip architectures built offline, and local CLIP-family checkpoints read and checked.

Architectures come from open_clip's own model configs (``'ViT-B-32'``,
``'ViT-B-16'``, ``'ViT-L-14'``, ``'RN50'``, ...; ``open_clip.list_models()``), or
from a local folder with an ``open_clip_config.json`` (``'local-dir:PATH'``), and
are built with ``open_clip.create_model(arch, pretrained=None)``: random
weights, nothing downloaded (``'hf-hub:'`` names and Hugging Face text towers,
which download, are refused).

Weights come from a local file holding an open_clip state dict, which is what
open_clip saves and what RemoteCLIP and GeoRSCLIP release (``.pt``; also
``.pth``, ``.bin``, ``.safetensors``): plain, nested under ``'state_dict'`` (an
open_clip training checkpoint), with DDP's ``'module.'`` prefix or not. Files are
read with ``torch.load(weights_only=True)`` (or safetensors), never more.

:func:`describe_open_clip_checkpoint` says what a checkpoint holds.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import logging
import math
import os
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from rsretrieval.utils.checkpoint_errors import CheckpointError
from rsretrieval.utils.checkpoint_reading import load_checkpoint_file
from rsretrieval.weights.pretrained import resolve_pretrained

#: CLIP's image normalisation (OpenAI's, used by open_clip unless a checkpoint says otherwise), RGB, 0-1 scale.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: First parts of the text tower's keys in open_clip's ``CLIP`` state dict (the text
#: tower is not nested there; ``CustomTextCLIP`` nests the same names under ``text.``).
TEXT_ROOTS = ('token_embedding', 'positional_embedding', 'transformer', 'ln_final', 'text_projection', 'cls_emb')

#: Stand-ins for the tower a module does not keep: open_clip builds both towers, this
#: makes the unused one a few hundred parameters (and never a Hugging Face download).
_STUB_TEXT = dict(context_length=2, vocab_size=2, width=8, heads=1, layers=1)
_STUB_VISION = dict(image_size=8, patch_size=8, width=8, head_width=8, layers=1)

#: Keys of an open_clip model config that ``create_model`` does not pass to the model.
_NOT_MODEL_KWARGS = ('custom_text', 'preprocess_cfg')


def require_open_clip():
    """The ``open_clip`` module, or an ImportError that says how to install it."""
    try:
        import open_clip
    except ImportError as err:  # the optional 'clip' extra
        raise ImportError(
            "CLIP-family models need open_clip: pip install open-clip-torch==3.3.0 (the 'clip' extra)"
        ) from err
    return open_clip


def _deep_merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def open_clip_config(arch: str, model_cfg: Mapping | None = None) -> dict:
    """open_clip's model config of ``arch`` with ``model_cfg`` merged in (nested dicts merge).

    Args:
        arch: An open_clip model name (``'ViT-B-32'``) or ``'local-dir:PATH'``.
        model_cfg: Overrides, e.g. ``dict(vision_cfg=dict(width=64))`` (tests
            shrink models this way) or ``dict(quick_gelu=True)``.

    Raises:
        ValueError: ``arch`` is unknown or would be downloaded (``'hf-hub:'``).
    """
    open_clip = require_open_clip()
    if arch.startswith('hf-hub:'):
        raise ValueError(f"{arch!r}: 'hf-hub:' architectures are downloaded; use an open_clip name or 'local-dir:PATH'")
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        known = open_clip.list_models()
        close = difflib.get_close_matches(arch, known, n=5, cutoff=0.5)
        hint = f'closest: {", ".join(close)}' if close else f'e.g. {", ".join(known[:8])}'
        raise ValueError(
            f'unknown open_clip architecture {arch!r} (open_clip {open_clip.__version__} has {len(known)}; {hint}; '
            "or 'local-dir:PATH' with an open_clip_config.json)"
        )
    return _deep_merge(cfg, model_cfg or {})


def build_open_clip(
    arch: str, model_cfg: Mapping | None = None, keep: str = 'both', preprocess_cfg: Mapping | None = None
) -> nn.Module:
    """``open_clip.create_model(arch, pretrained=None)`` with random weights, offline.

    Args:
        arch: open_clip architecture (see :func:`open_clip_config`).
        model_cfg: Overrides merged into the architecture's config.
        keep: ``'image'`` or ``'text'`` builds the other tower as a tiny stand-in
            (the caller keeps one tower only); ``'both'`` builds the model as is.
        preprocess_cfg: Overrides of open_clip's preprocessing (``mean``,
            ``std``, ``interpolation``), set on ``model.visual.preprocess_cfg``.

    Returns:
        The open_clip model (``CLIP`` or ``CustomTextCLIP``).

    Raises:
        ValueError: Unknown architecture, or one whose kept tower would be
            downloaded (Hugging Face text towers) or is not a contrastive CLIP
            (CoCa).
    """
    if keep not in ('both', 'image', 'text'):
        raise ValueError(f"keep must be 'both', 'image' or 'text', got {keep!r}")
    open_clip = require_open_clip()
    cfg = open_clip_config(arch, model_cfg)
    if 'multimodal_cfg' in cfg:
        raise ValueError(f'{arch}: CoCa-style models (a multimodal decoder) are not supported; use a CLIP architecture')
    if keep == 'image':
        cfg['text_cfg'] = dict(_STUB_TEXT)
    elif keep == 'text':
        cfg['vision_cfg'] = dict(_STUB_VISION)
    if cfg['text_cfg'].get('hf_model_name'):
        raise ValueError(
            f'{arch}: its text tower is a Hugging Face model ({cfg["text_cfg"]["hf_model_name"]}), which open_clip '
            'downloads; use an architecture with a CLIP text transformer'
        )
    kwargs = {k: v for k, v in cfg.items() if k not in _NOT_MODEL_KWARGS}
    with _quiet_random_init_warning():
        return open_clip.create_model(
            arch, pretrained=None, load_weights=False, force_preprocess_cfg=dict(preprocess_cfg or {}), **kwargs
        )


@contextlib.contextmanager
def _quiet_random_init_warning() -> Iterator[None]:
    """Drop open_clip's "No pretrained weights loaded" warning (the weights load later, from
    a local file), and keep its ``logging.warning`` from configuring the root logger."""
    root = logging.getLogger()
    null = logging.NullHandler()

    def keep(record: logging.LogRecord) -> bool:
        return 'No pretrained weights loaded' not in record.getMessage()

    root.addHandler(null)
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
        root.removeHandler(null)


def image_preprocess_cfg(arch: str, model_cfg: Mapping | None = None, preprocess_cfg: Mapping | None = None) -> dict:
    """open_clip's preprocessing of ``arch`` (``size``, ``mean``, ``std``, ``interpolation``,
    ...), as ``create_model(arch, pretrained=None)`` sets it, without building the model."""
    require_open_clip()
    from dataclasses import asdict

    from open_clip.transform import PreprocessCfg

    cfg = open_clip_config(arch, model_cfg)
    pp = asdict(PreprocessCfg())
    pp.update(cfg.get('preprocess_cfg') or {})  # a local-dir config may carry one
    pp['size'] = cfg['vision_cfg'].get('image_size', pp['size'])
    pp.update(preprocess_cfg or {})
    return pp


def normalisation_255(preprocess: Mapping) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` of a preprocessing config on the 0-255 scale of ``RetrievalDataPreprocessor``."""
    return tuple(255 * float(m) for m in preprocess['mean']), tuple(255 * float(s) for s in preprocess['std'])


# ------------------------------------------------------------------------ reading checkpoints
def read_open_clip_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The open_clip state dict in a file, unwrapped.

    ``path`` is a local file or a weight name the resolver knows (a zoo name such
    as ``'remoteclip-vit-b-32'``, ``hf-hub:ORG/NAME:FILE``, a URL): see
    :func:`rsretrieval.utils.resolve_pretrained`. Accepts a plain state dict or one
    nested under ``'state_dict'``, with keys prefixed by ``'module.'`` (DDP) or
    ``'_orig_mod.'`` (``torch.compile``) or not.

    Raises:
        FileNotFoundError: No such file.
        CheckpointError: One line: the file is unsafe, incomplete, or holds no tensors.
    """
    return unwrap_state_dict(load_checkpoint_file(resolve_pretrained(path)), path)


def unwrap_state_dict(checkpoint: Mapping, path: str | os.PathLike = 'checkpoint') -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint: ``checkpoint['state_dict']`` or the checkpoint
    itself, without a ``'module.'`` / ``'_orig_mod.'`` prefix that every key carries.

    Raises:
        CheckpointError: No tensors there (``path`` names the file in the message).
    """
    state = checkpoint
    if isinstance(state, Mapping) and isinstance(state.get('state_dict'), Mapping):
        state = state['state_dict']
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f'{path}: not a state dict (found {type(state).__name__})')
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f'{path}: holds no tensors')
    for prefix in ('module.', '_orig_mod.'):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def split_open_clip_state(state: Mapping[str, torch.Tensor]) -> tuple[dict, dict, dict]:
    """``(image, text, rest)``: the image tower's tensors without ``visual.``, the text
    tower's named as in open_clip's ``CLIP`` (``token_embedding.weight``, ...; a
    ``CustomTextCLIP``'s ``text.`` prefix removed) and the others (``logit_scale``, ...)."""
    image, text, rest = {}, {}, {}
    nested = any(k.startswith('text.') for k in state)
    for key, value in state.items():
        if key.startswith('visual.'):
            image[key[len('visual.') :]] = value
        elif nested and key.startswith('text.'):
            text[key[len('text.') :]] = value
        elif not nested and key.split('.', 1)[0] in TEXT_ROOTS:
            text[key] = value
        else:
            rest[key] = value
    return image, text, rest


# --------------------------------------------------------------------- describing towers
def _count_blocks(state: Mapping, prefix: str) -> int:
    ids = {k[len(prefix) :].split('.', 1)[0] for k in state if k.startswith(prefix)}
    return len({i for i in ids if i.isdigit()})


def image_signature(state: Mapping[str, torch.Tensor]) -> tuple | None:
    """What identifies an image tower's architecture in its tensors (keys without
    ``visual.``): ``('ViT', width, layers, patch, image size, embed)`` or
    ``('ResNet', width, layers, image size, embed)``; None when neither."""
    if 'conv1.weight' in state and 'class_embedding' in state:
        width, _, patch, _ = state['conv1.weight'].shape
        grid = math.isqrt(state['positional_embedding'].shape[0] - 1)
        embed = state['proj'].shape[1] if 'proj' in state else width
        return ('ViT', int(width), _count_blocks(state, 'transformer.resblocks.'), int(patch), grid * patch, int(embed))
    if 'attnpool.c_proj.weight' in state and 'conv3.weight' in state:
        layers = tuple(_count_blocks(state, f'layer{i}.') for i in range(1, 5))
        grid = math.isqrt(state['attnpool.positional_embedding'].shape[0] - 1)
        embed = state['attnpool.c_proj.weight'].shape[0]
        return ('ResNet', int(state['conv3.weight'].shape[0]), layers, grid * 32, int(embed))
    return None


def text_signature(state: Mapping[str, torch.Tensor]) -> tuple | None:
    """``('text', width, layers, context length, vocabulary, embed)`` of a text tower's
    tensors (named as in :func:`split_open_clip_state`); None when not one."""
    if 'token_embedding.weight' not in state or 'positional_embedding' not in state:
        return None
    vocab, width = state['token_embedding.weight'].shape
    proj = state.get('text_projection', state.get('text_projection.weight'))
    if proj is None:
        embed = width
    else:
        embed = proj.shape[1] if 'text_projection' in state else proj.shape[0]
    context = state['positional_embedding'].shape[0]
    return ('text', int(width), _count_blocks(state, 'transformer.resblocks.'), int(context), int(vocab), int(embed))


def _signature_of_config(cfg: Mapping, tower: str) -> tuple | None:
    embed = cfg.get('embed_dim')
    if tower == 'image':
        v = cfg.get('vision_cfg', {})
        if v.get('timm_model_name'):
            return None
        size = v.get('image_size', 224)
        size = size[0] if isinstance(size, (list, tuple)) else size
        if isinstance(v.get('layers'), (list, tuple)):
            return ('ResNet', v.get('width', 64), tuple(v['layers']), size, embed)
        return ('ViT', v.get('width', 768), v.get('layers', 12), v.get('patch_size', 16), size, embed)
    t = cfg.get('text_cfg', {})
    if t.get('hf_model_name'):
        return None
    return (
        'text',
        t.get('width', 512),
        t.get('layers', 12),
        t.get('context_length', 77),
        t.get('vocab_size', 49408),
        embed,
    )


def describe_signature(sig: tuple | None) -> str:
    """A short description of a tower signature."""
    if sig is None:
        return 'a tower of unknown layout'
    if sig[0] == 'ViT':
        _, width, layers, patch, size, embed = sig
        return f'ViT (width {width}, {layers} layers, patch {patch}, {size} px, embed {embed})'
    if sig[0] == 'ResNet':
        _, width, layers, size, embed = sig
        return f'ResNet (width {width}, blocks {"-".join(map(str, layers))}, {size} px, embed {embed})'
    _, width, layers, context, vocab, embed = sig
    return f'text transformer (width {width}, {layers} layers, context {context}, vocabulary {vocab}, embed {embed})'


def matching_architectures(sig: tuple | None, tower: str) -> list[str]:
    """open_clip's architecture names whose ``tower`` has this signature, plain CLIPs
    first (then CoCa and models with a Hugging Face or timm tower), shorter names first."""
    if sig is None:
        return []
    open_clip = require_open_clip()
    found = []
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name)
        try:
            if _signature_of_config(cfg, tower) == sig:
                special = bool(
                    'multimodal_cfg' in cfg
                    or cfg.get('custom_text')
                    or cfg['text_cfg'].get('hf_model_name')
                    or cfg['vision_cfg'].get('timm_model_name')
                )
                found.append((special, len(name), name))
        except (TypeError, KeyError):
            continue
    return [name for *_, name in sorted(found)]


def _named(sig: tuple | None, tower: str) -> str:
    names = matching_architectures(sig, tower)
    shown = ', '.join(names[:4]) + (', ...' if len(names) > 4 else '')
    return describe_signature(sig) + (f' = open_clip {shown}' if names else '')


def tower_mismatch(
    module: nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike, tower: str, arch: str
) -> str | None:
    """One line on why a checkpoint's tower does not fit ``module``, or None when it fits exactly.

    Args:
        module: The tower as built from the config (open_clip names).
        state: The checkpoint's tensors of that tower (:func:`split_open_clip_state`).
        path: The checkpoint, for messages.
        tower: ``'image'`` or ``'text'``.
        arch: The config's architecture, for messages.
    """
    own = module.state_dict()
    if not state:
        what = "'visual.*'" if tower == 'image' else "'token_embedding.weight', 'transformer.*'"
        return f'{path} has no {tower} tower (no {what} tensors): is it an open_clip checkpoint?'
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return None
    signature = image_signature if tower == 'image' else text_signature
    theirs, ours = signature(state), signature(own)
    if theirs != ours:
        return (
            f"{path}: the checkpoint's {tower} tower is a {_named(theirs, tower)}, but the config builds {arch}, "
            f"a {describe_signature(ours)}; set the config's arch to the checkpoint's"
        )
    detail = '; '.join(
        f'{label} {", ".join(keys[:3])}{", ..." if len(keys) > 3 else ""}'
        for label, keys in (('missing', missing), ('unexpected', unexpected), ('other shape', shapes))
        if keys
    )
    return (
        f'{path}: the {tower} tower does not fit {arch} although both are a {describe_signature(ours)} '
        f'(another variant of it?): {detail}'
    )


def load_tower(
    module: nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike, tower: str, arch: str
) -> None:
    """Load one tower's tensors into ``module`` exactly, or fail in one line naming both sides.

    The arguments are those of :func:`tower_mismatch`.

    Raises:
        CheckpointError: The checkpoint has no such tower, or one of another
            architecture (width, depth, patch, image size, embedding ...), or its
            tensors do not match the module's names and shapes.
    """
    problem = tower_mismatch(module, state, path, tower, arch)
    if problem:
        raise CheckpointError(problem)
    module.load_state_dict(dict(state), strict=True)


def describe_open_clip_checkpoint(path: str | os.PathLike) -> str:
    """What an open_clip checkpoint holds, in a few lines: its towers (and the open_clip
    architectures that have them), its logit scale and any other tensors.

    Args:
        path: A checkpoint file or a weight name (see :func:`read_open_clip_state_dict`).

    Raises:
        FileNotFoundError, CheckpointError: As :func:`read_open_clip_state_dict`.
    """
    state = read_open_clip_state_dict(path)
    image, text, rest = split_open_clip_state(state)
    lines = [f'{path}: {len(state)} tensors']
    lines.append(f'  image: {_named(image_signature(image), "image") if image else "none"}')
    lines.append(f'  text:  {_named(text_signature(text), "text") if text else "none"}')
    if 'logit_scale' in rest:
        scale = rest['logit_scale'].double().exp().item()
        lines.append(f'  logit scale: {scale:.2f} (temperature {1 / scale:.4f})')
    others = sorted(k for k in rest if k != 'logit_scale')
    if others:
        lines.append(f'  other tensors: {", ".join(others[:6])}{", ..." if len(others) > 6 else ""}')
    return '\n'.join(lines)


if __name__ == '__main__':
    # Run as ``python -m`` this module was once a command; say where the command went
    # instead of doing nothing (Python's runpy warning about the package import comes first).
    raise SystemExit(
        'open_clip_weights is a library module; its commands are '
        '`rsretrieval-weights inspect-open-clip CKPT` and `rsretrieval-weights convert-open-clip CKPT OUT`'
    )
