// The search page of `rsretrieval-retrieve serve`: the query lives in the URL (/?q=...&k=...),
// results come from /api/search, thumbnails from /thumb/ID, full images from /image/ID.
'use strict';

(() => {
  const form = document.getElementById('search');
  const input = document.getElementById('q');
  const kSelect = document.getElementById('k');
  const status = document.getElementById('status');
  const results = document.getElementById('results');
  const viewer = document.getElementById('viewer');
  const full = document.getElementById('full');
  const fullCaption = document.getElementById('full-caption');
  let latest = 0; // the newest search: older answers that arrive late are dropped
  let indexed = null;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // text, never HTML
    return node;
  }

  function setK(k) {
    if (![...kSelect.options].some((option) => option.value === k)) kSelect.add(new Option(k, k));
    kSelect.value = k;
  }

  function showError(message) {
    results.replaceChildren();
    results.dataset.state = 'error';
    status.textContent = message;
    status.className = 'error';
  }

  function show(hit) {
    full.src = hit.image;
    full.alt = hit.name;
    fullCaption.textContent = `#${hit.rank} · ${hit.score.toFixed(3)} · ${hit.path}`;
    viewer.showModal();
  }

  function tile(hit) {
    const figure = element('figure', 'hit');
    figure.dataset.id = hit.id;
    const link = element('a');
    link.href = hit.image;
    link.title = hit.path;
    const img = element('img');
    img.src = hit.thumbnail;
    img.alt = hit.name;
    img.loading = 'lazy';
    link.append(img);
    link.addEventListener('click', (event) => {
      event.preventDefault();
      show(hit);
    });
    const caption = element('figcaption');
    const line = element('span', 'line');
    line.append(element('span', 'rank', `#${hit.rank}`), element('span', 'score', hit.score.toFixed(3)));
    const name = element('span', 'name', hit.name);
    name.title = hit.path;
    caption.append(line, name);
    figure.append(link, caption);
    return figure;
  }

  function render(answer) {
    results.replaceChildren(...answer.results.map(tile));
    results.dataset.query = answer.query;
    results.dataset.state = 'done';
    status.className = '';
    status.textContent = `${answer.results.length} best of ${answer.images.toLocaleString()} images ` +
      `for “${answer.query}”, ${answer.took_ms} ms`;
  }

  async function run(q, k) {
    const ticket = ++latest;
    results.dataset.state = 'loading';
    status.className = '';
    status.textContent = 'Searching…';
    let response;
    let answer;
    try {
      response = await fetch('/api/search?' + new URLSearchParams({ q, k }));
      answer = await response.json();
    } catch (err) {
      if (ticket === latest) showError(`The server did not answer: ${err.message}`);
      return;
    }
    if (ticket !== latest) return;
    if (!response.ok) showError(answer.detail || response.statusText);
    else render(answer);
  }

  function fromUrl() {
    const params = new URLSearchParams(window.location.search);
    input.value = params.get('q') || '';
    if (params.get('k')) setK(params.get('k'));
    if (input.value.trim()) {
      run(input.value, kSelect.value);
    } else {
      latest++;
      results.replaceChildren();
      results.dataset.state = 'idle';
      status.className = '';
      status.textContent = indexed === null ? '' : `${indexed.toLocaleString()} images indexed`;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.value.trim()) {
      showError('Type what to search for, e.g. a bridge over a river.');
      return;
    }
    const params = new URLSearchParams({ q: input.value, k: kSelect.value });
    if (window.location.search !== '?' + params) window.history.pushState(null, '', '/?' + params);
    run(input.value, kSelect.value);
  });
  window.addEventListener('popstate', fromUrl);
  viewer.addEventListener('click', (event) => {
    if (event.target === viewer) viewer.close(); // a click on the backdrop
  });

  fetch('/api/info')
    .then((response) => response.json())
    .then((info) => {
      indexed = info.images;
      input.maxLength = info.max_query_chars;
      if (results.dataset.state === 'idle') status.textContent = `${indexed.toLocaleString()} images indexed`;
    })
    .catch(() => {});
  fromUrl();
})();
