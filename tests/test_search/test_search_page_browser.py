"""The search page in a real browser: Debian's headless Chromium driven by Selenium.

The system's chromedriver is named to Selenium, so that nothing is downloaded
(Selenium Manager is not run). Skipped, saying so, where no Chromium and
chromedriver are installed (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from test_server import build_served_index, get, serving

WAIT = 30  # seconds for the page to show results (the tiny model answers in milliseconds)
FLAGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--no-proxy-server',
    '--window-size=1280,900',
]


def find_chromium() -> tuple[str, str] | None:
    """``(browser, chromedriver)`` of the system, or None."""
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    driver = shutil.which('chromedriver')
    if driver is None and Path('/usr/bin/chromedriver').is_file():
        driver = '/usr/bin/chromedriver'
    return (browser, driver) if browser and driver else None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason='no browser found: Chromium and its chromedriver are not installed (apt-get install chromium '
    'chromium-driver), so the search page is not tested in a browser',
)


@pytest.fixture(scope='module')
def page_url(tmp_path_factory, demo_root, tiny_demo_checkpoint):
    index_dir = build_served_index(tmp_path_factory, demo_root, tiny_demo_checkpoint)
    with serving(index_dir) as (url, _, _):
        yield url


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    browser_path, driver_path = CHROMIUM
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}')
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def _api_names(url: str, query: str, k: int) -> list[str]:
    status, _, body = get(f'{url}/api/search?' + urllib.parse.urlencode(dict(q=query, k=k)))
    assert status == 200
    return [hit['name'] for hit in json.loads(body)['results']]


def _results(driver, query: str) -> list[str]:
    """The file names shown once the page has the results of ``query``."""

    def done(d):
        grid = d.find_element(By.ID, 'results')
        return grid.get_attribute('data-state') == 'done' and grid.get_attribute('data-query') == query

    WebDriverWait(driver, WAIT).until(done)
    return [e.get_attribute('textContent') for e in driver.find_elements(By.CSS_SELECTOR, '#results .hit .name')]


def _loaded(driver, selector: str) -> bool:
    script = 'const img = document.querySelector(arguments[0]); return img && img.complete && img.naturalWidth > 0;'
    return driver.execute_script(script, selector)


def test_type_a_query_see_the_grid_open_an_image_and_share_the_url(browser, page_url, tmp_path):
    query = 'three red planes at the top left of farmland'
    browser.get(page_url + '/')
    box = browser.find_element(By.ID, 'q')
    box.send_keys(query, Keys.ENTER)
    names = _results(browser, query)
    assert names == _api_names(page_url, query, 10) and len(names) == 10
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query) == {'q': [query], 'k': ['10']}
    scores = [float(e.text) for e in browser.find_elements(By.CSS_SELECTOR, '#results .score')]
    assert scores == sorted(scores, reverse=True)
    WebDriverWait(browser, WAIT).until(lambda d: _loaded(d, '#results .hit img'))
    browser.save_screenshot(str(tmp_path / 'search_page.png'))
    assert (tmp_path / 'search_page.png').stat().st_size > 1000

    # a click on a thumbnail shows the full image
    browser.find_element(By.CSS_SELECTOR, '#results .hit a').click()
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, 'viewer').get_attribute('open') is not None)
    WebDriverWait(browser, WAIT).until(lambda d: _loaded(d, '#full'))
    assert names[0] in browser.find_element(By.ID, 'full-caption').text
    browser.find_element(By.ID, 'close').click()

    # a second search, then the browser's back button: the first one again
    box = browser.find_element(By.ID, 'q')
    box.clear()
    box.send_keys('a green field', Keys.ENTER)
    assert len(_results(browser, 'a green field')) == 10
    browser.back()
    assert _results(browser, query) == names and browser.find_element(By.ID, 'q').get_attribute('value') == query

    # the URL of a search, opened anew, shows that search
    other = 'a river next to a road'
    browser.get(page_url + '/?' + urllib.parse.urlencode(dict(q=other, k=3)))
    assert _results(browser, other) == _api_names(page_url, other, 3)
    assert browser.find_element(By.ID, 'q').get_attribute('value') == other

    # a refused query is explained on the page
    browser.get(page_url + '/?' + urllib.parse.urlencode(dict(q='river', k=500)))
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_element(By.ID, 'results').get_attribute('data-state') == 'error'
    )
    assert 'k must be a whole number from 1 to 100' in browser.find_element(By.ID, 'status').text
