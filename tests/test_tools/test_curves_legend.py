"""Every line of the curves has a legend entry on its panel; a short run is smoothed too."""

import numpy as np
import pytest

from rsretrieval.analysis.curves import METRICS, RunScalars, default_window, draw_curves


def _run(name: str, points: int = 27, epochs: int = 3) -> RunScalars:
    iters = np.arange(1, points + 1) * 10
    rng = np.random.default_rng(len(name))
    train = {key: (iters, rng.random(points) + np.linspace(3, 1, points)) for key in ('loss', 'loss_itc', 'lr')}
    val = {metric: (np.arange(1, epochs + 1), np.linspace(20, 40, epochs) + i) for i, metric in enumerate(METRICS)}
    return RunScalars(name, train, val)


@pytest.mark.parametrize('names', [['demo'], ['s0', 's1']])
def test_every_plotted_line_is_in_its_panels_legend(names):
    fig = draw_curves([_run(n) for n in names])
    assert [ax.get_title() for ax in fig.axes][:3] == ['loss', 'loss_itc', 'lr']
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels and all(not label.startswith('_') for label in labels), (ax.get_title(), labels)
        legend = ax.get_legend()
        assert legend is not None and [t.get_text() for t in legend.get_texts()] == labels
        assert len(set(labels)) == len(labels)  # no two lines share an entry


def test_validation_lines_name_their_metric_and_run():
    fig = draw_curves([_run('s0'), _run('s1')])
    labels = [line.get_label() for line in fig.axes[-1].get_lines()]
    expected = [f'{run}: {m}' for run in ('s0', 's1') for m in (*METRICS, 'best mR')]
    assert labels == expected


def test_the_demos_27_points_get_a_moving_average():
    assert default_window(27) == 3 and default_window(2500) == 100
    assert default_window(4) == 2 and default_window(3) == 1 and default_window(1) == 1
    fig = draw_curves([_run('demo')], keys=['loss'])
    logged, mean = fig.axes[0].get_lines()
    assert logged.get_label() == 'logged' and mean.get_label() == 'mean of 3 points'
    assert not np.allclose(logged.get_ydata(), mean.get_ydata())


def test_an_explicit_window_of_one_draws_the_logged_line_only():
    fig = draw_curves([_run('demo')], keys=['loss'], window=1)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ['logged']
