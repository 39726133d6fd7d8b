"""Progress lines of evaluation: to the logger, every interval, never for a short loop."""

from mmengine.logging import MMLogger

from rsretrieval.utils.progress import Progress


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_go_to_the_logger_every_interval(monkeypatch):
    lines = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'info', lines.append)
    clock = _Clock()
    progress = Progress(10, 'val: image batches', every=30, clock=clock)
    for _ in range(10):
        clock.now += 20  # a line every 30 s: after batches 2, 4, 6, 8 (none once done)
        progress.update()
    progress.close()
    assert lines == [
        'val: image batches: 2/10 (20 %), 40 s, ETA 2 min 40 s',
        'val: image batches: 4/10 (40 %), 80 s, ETA 2 min 00 s',
        'val: image batches: 6/10 (60 %), 2 min 00 s, ETA 80 s',
        'val: image batches: 8/10 (80 %), 2 min 40 s, ETA 40 s',
    ]


def test_a_short_loop_or_another_rank_writes_nothing(monkeypatch):
    lines = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'info', lines.append)
    clock = _Clock()
    for enabled, step in ((True, 1.0), (False, 60.0)):
        progress = Progress(5, 'test: caption batches', enabled=enabled, clock=clock)
        for _ in range(5):
            clock.now += step
            progress.update()
        progress.close()
    assert lines == []
