"""High-level use of trained models: build from a config and checkpoint, embed files and text."""

from .inference import build_test_pipeline, embed_texts, init_model, iter_image_embeddings

__all__ = ['build_test_pipeline', 'embed_texts', 'init_model', 'iter_image_embeddings']
