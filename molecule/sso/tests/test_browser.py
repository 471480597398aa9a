"""A real browser (Debian's headless Chromium, driven through chromedriver) logs in through SSO.

A screenshot of every step is kept in tests/artifacts/sso/ of the checkout.
"""

import os
import shutil
import sys
import tempfile

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SCENARIO, "..", "shared"))
from labhosts import addr, connect  # noqa: E402  pylint: disable=wrong-import-position

ARTIFACTS = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), "tests", "artifacts", "sso")
HOSTS = {name: connect(name) for name in ("sso-nginx", "sso-idp")}


@pytest.fixture(name="browser")
def fixture_browser():
    profile = tempfile.mkdtemp(prefix="jfh-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    rules = ", ".join("MAP %s %s" % (name, addr(host)) for name, host in HOSTS.items())
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--ignore-certificate-errors", "--window-size=1024,768", "--user-data-dir=" + profile,
                     "--host-resolver-rules=" + rules + ", EXCLUDE localhost"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def shot(driver, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    assert driver.save_screenshot(os.path.join(ARTIFACTS, name + ".png"))


def test_browser_logs_in_through_the_provider_and_lands_on_jellyfin(browser):
    wait = WebDriverWait(browser, 20)
    browser.get("https://sso-nginx/web/")
    wait.until(expected_conditions.presence_of_element_located((By.ID, "subject-input")))
    assert browser.current_url.startswith("http://sso-idp:9400/oauth2/authorize"), browser.current_url
    shot(browser, "1-provider-login-form")

    browser.find_element(By.ID, "subject-input").send_keys("alice@friends.example")
    shot(browser, "2-provider-form-filled")
    form = browser.find_element(By.ID, "subject-input").find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.XPATH, ".//button[normalize-space()='Authorize']").click()

    wait.until(expected_conditions.presence_of_element_located((By.ID, "reactRoot")))
    assert browser.current_url == "https://sso-nginx/web/", browser.current_url
    assert browser.get_cookie("_oauth2_proxy") is not None
    cookie = browser.get_cookie("_oauth2_proxy")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax", cookie
    shot(browser, "3-jellyfin-web-ui")
