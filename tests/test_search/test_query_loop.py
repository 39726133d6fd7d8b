"""``search`` answering many queries with one model load: arguments, ``--queries FILE``, ``--interactive``;
and what a query may hold (control characters are refused)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from conftest import REPO
from test_server import build_served_index

import rsretrieval.apis
from rsretrieval.search.cli import main, parse_args, query_problem
from rsretrieval.search.queries import QueryError, prompt_lines, query_loop, read_queries, text_problem


def _stdin(data: bytes) -> io.TextIOWrapper:
    """A standard input that is not a terminal, holding ``data``."""
    return io.TextIOWrapper(io.BytesIO(data), encoding='utf-8')


def _fails(capsys, argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err.strip()


# ----------------------------------------------------------------- what a query may hold
@pytest.mark.parametrize(
    'query, found',
    [
        ('\x00', '(U+0000, NUL) at character 1'),
        ('a\x00b', '(U+0000, NUL) at character 2'),
        ('bridge\x1b[31m', '(U+001B, ESC) at character 7'),
        ('boats\x7f', '(U+007F, DEL) at character 6'),
        ('river\x85', '(U+0085) at character 6'),  # a C1 control
        ('two\nlines', '(U+000A, a line break) at character 4'),
        ('\x1f', '(U+001F) at character 1'),  # white space to str.strip, a control all the same
    ],
)
def test_a_control_character_is_refused_where_it_is(query, found):
    assert text_problem(query) == f'contains a control character {found}; queries are plain text'


def test_bytes_that_are_not_utf8_are_refused():
    query = b'caf\xe9'.decode('utf-8', errors='surrogateescape')  # how argv carries them
    assert text_problem(query) == 'is not valid UTF-8 text (a byte that is not UTF-8 at character 4)'


@pytest.mark.parametrize('query', ['a river', 'a\tbridge', 'café près du pont', '河流上的桥', 'boats 🚤'])
def test_plain_text_tabs_and_any_language_are_accepted(query):
    assert text_problem(query) is None


@pytest.mark.parametrize('query', ['', '   ', ' \t '])
def test_a_blank_query_is_empty(query):
    assert text_problem(query).startswith('is empty: give a text to search for')


def test_the_command_line_names_the_query_at_fault():
    assert query_problem(['ok', 'a\x00b']) == (
        'query 2 of 2 contains a control character (U+0000, NUL) at character 2; queries are plain text'
    )
    assert query_problem(['a\x07']).startswith('the query contains a control character (U+0007)')


# ------------------------------------------------------------------------ query files
def test_a_query_file_skips_blank_lines_and_reads_crlf(tmp_path):
    path = tmp_path / 'q.txt'
    path.write_bytes(b'a river\r\n\r\n  \n  boats in a harbour \nlast line without a break')
    assert read_queries(str(path)) == ['a river', 'boats in a harbour', 'last line without a break']
    assert read_queries('-', stdin=_stdin(b'one\ntwo\n')) == ['one', 'two']


@pytest.mark.parametrize(
    'data, message',
    [
        (b'ok\nbad\x00query\n', 'q.txt:2: the query contains a control character (U+0000, NUL) at character 4'),
        (b'ok\n\x1c\n', 'q.txt:2: the query contains a control character (U+001C)'),  # splitlines() would split here
        (b'ok\n\nthird \xff\n', 'q.txt:3: not UTF-8 text (byte 7 of the line)'),
        (b'\n  \n', 'q.txt holds no query'),
    ],
)
def test_a_query_file_names_the_line_at_fault(tmp_path, data, message):
    path = tmp_path / 'q.txt'
    path.write_bytes(data)
    with pytest.raises(QueryError) as info:
        read_queries(str(path))
    assert str(info.value).startswith(f'{tmp_path}/{message}')


def test_search_refuses_a_bad_query_file_in_one_line_before_loading_anything(tmp_path, capsys):
    (tmp_path / 'index').mkdir()
    (tmp_path / 'index' / 'meta.json').write_text('{}')
    (tmp_path / 'q.txt').write_bytes(b'a river\n\x00\n')
    code, err = _fails(capsys, ['search', str(tmp_path / 'index'), '--queries', str(tmp_path / 'q.txt')])
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f'rsretrieval-retrieve: error: {tmp_path}/q.txt:2: the query contains a control character')


@pytest.mark.parametrize(
    'argv, message',
    [
        (['search', '{index}'], 'give a query to search for, --queries FILE, or --interactive'),
        (['search', '{index}', '--queries', '-', '-i'], '--queries - and --interactive both read stdin'),
        (['search', '{index}', '--queries', '{tmp}/none.txt'], 'cannot read the query file {tmp}/none.txt'),
        (['search', '{index}', 'ok', 'a\x1bb'], 'query 2 of 2 contains a control character (U+001B, ESC)'),
    ],
)
def test_search_checks_where_the_queries_come_from(tmp_path, capsys, argv, message):
    (tmp_path / 'index').mkdir()
    (tmp_path / 'index' / 'meta.json').write_text('{}')
    fill = dict(index=tmp_path / 'index', tmp=tmp_path)
    code, err = _fails(capsys, [a.format(**fill) for a in argv])
    assert code == 2 and err.startswith(f'rsretrieval-retrieve: error: {message.format(**fill)}')


# ------------------------------------------------------------------------- the loop
def test_the_loop_answers_each_line_skips_blank_ones_and_goes_on_after_a_refusal():
    answered, errors = [], io.StringIO()
    lines = prompt_lines(io.StringIO('a river\n\n   \nbad\x00line\r\n  boats \n\x1f\nlast'))
    assert query_loop(lines, answered.append, errors) == (3, 2)
    assert answered == ['a river', 'boats', 'last']
    assert errors.getvalue().splitlines() == [
        '<stdin>:4: the query contains a control character (U+0000, NUL) at character 4; queries are plain text',
        '<stdin>:6: the query contains a control character (U+001F) at character 1; queries are plain text',
    ]


def test_the_loop_answers_a_line_before_the_next_is_read():
    """A program that writes a query and waits for its answer is answered at once."""
    events = []

    def lines():
        for line in ('one', 'two'):
            events.append(f'read {line}')
            yield line

    query_loop(lines(), lambda query: events.append(f'answer {query}'))
    assert events == ['read one', 'answer one', 'read two', 'answer two']


# ------------------------------------------------------------------ the command, end to end
@pytest.fixture(scope='module')
def index_dir(tmp_path_factory, demo_root, tiny_demo_checkpoint):
    return build_served_index(tmp_path_factory, demo_root, tiny_demo_checkpoint)


def test_one_model_load_answers_arguments_a_file_and_the_prompt(tmp_path, index_dir, monkeypatch, capsys):
    loads = []
    real = rsretrieval.apis.init_model

    def counted(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(rsretrieval.apis, 'init_model', counted)
    (tmp_path / 'q.txt').write_text('boats in a harbour\n\na bridge over a river\n')
    monkeypatch.setattr(sys, 'stdin', _stdin(b'three planes\n\nbad\x00\n\xff\nfarmland\n'))
    out_json = tmp_path / 'r.json'
    main(['search', str(index_dir), 'a road', '--queries', str(tmp_path / 'q.txt'), '--interactive',
          '--topk', '2', '--device', 'cpu', '--json', str(out_json)])  # fmt: skip
    captured = capsys.readouterr()
    order = ['a road', 'boats in a harbour', 'a bridge over a river', 'three planes', 'farmland']
    assert len(loads) == 1
    assert [line.removeprefix('query: ') for line in captured.out.splitlines() if line.startswith('query: ')] == order
    assert [r['query'] for r in json.loads(out_json.read_text())] == order
    assert all(len(r['results']) == 2 for r in json.loads(out_json.read_text()))
    assert captured.err.splitlines() == [
        '<stdin>:3: the query contains a control character (U+0000, NUL) at character 4; queries are plain text',
        '<stdin>:4: the query is not valid UTF-8 text (a byte that is not UTF-8 at character 1)',
    ]


def test_queries_from_stdin_with_a_dash(index_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'stdin', _stdin(b'a river\nboats\n'))
    main(['search', str(index_dir), '--queries', '-', '--topk', '1', '--device', 'cpu'])
    assert capsys.readouterr().out.count('query: ') == 2


def test_search_help_says_the_model_loads_once():
    proc = subprocess.run(
        [sys.executable, 'tools/retrieve.py', 'search', '--help'], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    help_text = ' '.join(proc.stdout.split())
    assert proc.returncode == 0 and '--queries FILE' in help_text and '--interactive' in help_text
    assert 'The model loads once per call' in help_text and 'rather than one call per query' in help_text


def test_query_texts_may_follow_the_options():
    args = parse_args(['search', 'idx', 'a river', '--topk', '5', 'boats', '--device', 'cpu', 'planes'])
    assert args.queries == ['a river', 'boats', 'planes'] and args.topk == 5 and args.device == 'cpu'
    assert parse_args(['search', 'idx', '--queries', 'q.txt']).queries == []
    for argv in (['search', 'idx', 'a river', '--bogus'], ['serve', 'idx', 'extra']):
        with pytest.raises(SystemExit) as info:
            parse_args(argv)
        assert info.value.code == 2
