"""A headless Chromium driven by Selenium, for the web console's tests.

Selenium's calls block, so tests run them in a thread (`in_thread`) while
the reactor goes on serving the gateways the browser talks to.

Debian's `chromium` and `chromium-driver` are used (.ci/run installs them).
Where neither can be found the tests skip, with the reason from
`unavailable()`; under CI=true they fail instead, so CI never passes
without having run them.
"""

import os
import shutil
import tempfile

from twisted.internet import threads

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER = ("/usr/bin/chromedriver",)

# Without network the background fetches hang on refused connections.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,900")

WAIT = 10  # seconds a page condition may take


def _first(paths):
    return next((path for path in paths if os.path.exists(path)), None)


def unavailable():
    """Why no browser test can run here, or None when one can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[test]')"
    if _first(CHROMIUM) is None:
        return "no Chromium (apt-get install chromium chromium-driver)"
    if _first(DRIVER) is None:
        return "no chromedriver (apt-get install chromium-driver)"
    return None


class Browser:
    """One Chromium with a fresh profile; `quit()` ends it and removes the profile."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="i3gw-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = _first(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        self.driver = webdriver.Chrome(options=options, service=Service(_first(DRIVER)))
        self.driver.set_page_load_timeout(WAIT)

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- page helpers (blocking: call through in_thread) --------------------

    def find(self, css):
        return self.driver.find_element("css selector", css)

    def wait(self, condition, message):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT, poll_frequency=0.05).until(
            lambda driver: condition(), message)

    def wait_text(self, css, text):
        """Wait until an element matching `css` contains `text`; return it."""
        def found():
            for element in self.driver.find_elements("css selector", css):
                if text in element.text:
                    return element
            return None
        return self.wait(found, f"no {css} containing {text!r}")

    def fill(self, css, value):
        element = self.find(css)
        element.clear()
        element.send_keys(value)

    def click(self, css):
        self.find(css).click()


def in_thread(fn, *args, **kwargs):
    """Run a blocking browser step off the reactor thread."""
    return threads.deferToThread(fn, *args, **kwargs)
