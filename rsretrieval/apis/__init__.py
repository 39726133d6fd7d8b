"""High-level use of trained models: build from a config and checkpoint (or an exported model
folder), embed files and text, export a model as a folder to share, and evaluate several models
on several test sets into one table with its protocol card.

The names load lazily, so that a tool can parse and check its arguments
(:mod:`rsretrieval.apis.table_specs`) before torch and the models are imported.
"""

from __future__ import annotations

from rsretrieval.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        'export': ('ExportError', 'export_model', 'is_model_folder'),
        'metrics_file': ('read_metrics',),
        'inference': ('build_test_pipeline', 'embed_texts', 'init_model', 'iter_image_embeddings'),
        # not the names of modules of this package (selection_rule, model_card): once such a module is
        # imported, the package attribute is the module
        'table_specs': (
            'ModelSpec',
            'SpecError',
            'TableModel',
            'TestSetSpec',
            'parse_model_spec',
            'parse_test_set_spec',
        ),
        'selection_rule': ('SelectionRule', 'validates_on_test_split'),
        'protocol_card': ('environment_card', 'test_set_card'),
        'results_table': ('GridResult', 'evaluate_grid'),
        'table_report': ('results_markdown', 'write_results'),
    },
)
