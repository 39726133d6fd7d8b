"""High-level use of trained models: build from a config and checkpoint (or an exported model
folder), embed files and text, export a model as a folder to share."""

from .export import ExportError, export_model, is_model_folder, read_metrics
from .inference import build_test_pipeline, embed_texts, init_model, iter_image_embeddings

__all__ = [
    'ExportError',
    'build_test_pipeline',
    'embed_texts',
    'export_model',
    'init_model',
    'is_model_folder',
    'iter_image_embeddings',
    'read_metrics',
]
