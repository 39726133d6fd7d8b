"""A plugin that cannot be imported because it is not on the path: one line naming it, and what to do."""

from __future__ import annotations

import pytest
from mmengine.config import Config

from rsretrieval import plugins

HINT = "no module named 'rs_absent_plugin': install the plugin that provides it (pip install -e PATH/TO/PLUGIN) or add "


def test_custom_imports_of_a_missing_module_name_it_in_one_line(tmp_path):
    config = tmp_path / 'cfg.py'
    config.write_text("custom_imports = dict(imports=['rs_absent_plugin'], allow_failed_imports=False)\n")
    with pytest.raises(ImportError) as caught:
        Config.fromfile(str(config))
    assert 'PYTHONPATH' not in str(caught.value).splitlines()[0]  # mmengine's hint comes after sys.path, line by line
    hint = plugins.missing_module_hint(caught.value)
    assert hint == f'custom_imports: {HINT}the folder that holds it to PYTHONPATH'


def test_other_import_errors_get_no_hint():
    assert plugins.missing_module_hint(ImportError("cannot import name 'X' from 'torch'")) is None
    assert plugins.missing_module_hint(RuntimeError('boom')) is None
    try:
        try:
            import rs_absent_plugin  # noqa: F401
        except ImportError as err:
            raise RuntimeError('while registering') from err
    except RuntimeError as err:
        assert plugins.missing_module(err) == 'rs_absent_plugin'  # found through the cause


def test_an_entry_point_whose_module_is_gone_says_so(tmp_path, monkeypatch):
    site = tmp_path / 'site'
    info = site / 'gone_plugin-0.1.dist-info'
    info.mkdir(parents=True)  # installed metadata, module no longer on the path (an editable install moved)
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: gone-plugin\nVersion: 0.1\n')
    (info / 'entry_points.txt').write_text('[rsretrieval.plugins]\ngone = rs_absent_plugin\n')
    monkeypatch.syspath_prepend(str(site))
    try:
        with pytest.raises(plugins.PluginError) as caught:
            plugins.load_plugins(reload=True)
        message = str(caught.value)
        assert message.startswith('rsretrieval plugin gone = rs_absent_plugin (gone-plugin 0.1) failed to load')
        assert message.endswith(f'; {HINT}the folder that holds it to PYTHONPATH') and '\n' not in message
    finally:
        monkeypatch.undo()
        plugins.load_plugins(reload=True)
