"""The web console in a real headless Chromium, against MudA and MudB on
the in-repo router (all on 127.0.0.1, ports chosen by the OS).

The browser logs into MudA's console; MudB is driven by its TCP client.
One browser serves the whole class (starting Chromium is the slow part);
each test has its own gateways, so its own origin and sessionStorage.
Screenshots of each view go to the test's temporary directory
(<test>-<view>.png), or to I3_SCREENSHOTS_DIR when set.
"""

import atexit
import os

from twisted.internet import defer
from twisted.trial import unittest

from tests.integration import browser as chromium
from tests.integration.harness import API_KEY
from tests.integration.mudpair import A, B, make_loop, start_pair, state_dir
from tests.integration.two_muds import TELL_ONLY_KEY, player, two_keys

CHANNEL = "dead_test4"
XSS = '<img src=x onerror="document.title=\'owned\'">'


class ConsoleBrowserTests(unittest.TestCase):

    browser = None
    skip_reason = None
    timeout = 60

    @classmethod
    def setUpClass(cls):
        cls.start_browser()

    @classmethod
    def start_browser(cls):
        """One browser for the class, started by the first test that needs
        it (trial calls no setUpClass) and quit at the end."""
        if cls.browser is not None or cls.skip_reason is not None:
            return
        reason = chromium.unavailable()
        if reason is None:
            cls.browser = chromium.Browser()
            atexit.register(cls.tearDownClass)   # trial calls no tearDownClass either
        elif os.environ.get("CI") == "true":
            raise RuntimeError(f"browser tests cannot run in CI: {reason}")
        else:
            cls.skip_reason = reason

    @classmethod
    def tearDownClass(cls):
        if cls.browser is not None:
            cls.browser.quit()
            cls.browser = None

    def setUp(self):
        self.start_browser()
        if self.browser is None:
            raise unittest.SkipTest(self.skip_reason)
        # I3_SCREENSHOTS_DIR keeps them past the run (the temporary one goes).
        self.shots = os.environ.get("I3_SCREENSHOTS_DIR") or self.mktemp()
        os.makedirs(self.shots, exist_ok=True)
        self.loop = make_loop(self)

    # -- helpers ---------------------------------------------------------

    def step(self, fn, *args):
        return chromium.in_thread(fn, *args)

    def screenshot(self, name):
        path = os.path.join(self.shots, f"{self._testMethodName}-{name}.png")
        return self.step(self.browser.driver.save_screenshot, path)

    @defer.inlineCallbacks
    def start(self):
        pair = yield start_pair(self.loop, a={"api": two_keys(A)})
        yield pair.cb.call("presence_sync", {"users": [player("bob", location="Town square")]})
        self.pair = pair
        return pair

    def url(self, service):
        return f"http://127.0.0.1:{service.web_listener.getHost().port}/"

    def log_in(self, service, key=API_KEY):
        b = self.browser

        def steps():
            b.driver.get(self.url(service))
            b.fill("#api-key", key)
            b.find("#login button").click()
            b.wait_text("#conn", "online")
            if key == API_KEY:
                b.wait_text("#link-state", "ready")
        return self.step(steps)

    def shown_tabs(self):
        return [tab.text for tab in self.browser.driver.find_elements("css selector", "#tabs button")
                if tab.is_displayed()]

    def view(self, name):
        return self.step(self.browser.click, f'#tabs button[data-view="{name}"]')

    def join(self, channel):
        b = self.browser

        def steps():
            b.click('#tabs button[data-view="channels"]')
            b.fill("#chan-name", channel)
            b.find("#chan-join-form button").click()
            b.wait_text("#chan-tabs button", channel)
        return self.step(steps)

    @defer.inlineCallbacks
    def b_joins(self, pair):
        yield pair.cb.call("channel_join", {"channel": CHANNEL})
        # Both gateways listen before B speaks: the router sends only to listeners.
        yield pair.router.wait_for(lambda r: r.listening.get(CHANNEL, set()) >= {A, B})

    # -- tests -----------------------------------------------------------

    @defer.inlineCallbacks
    def test_console_end_to_end(self):
        pair = yield self.start()
        b = self.browser
        yield self.log_in(pair.a)
        text = yield self.step(lambda: (b.find("#link-router").text, b.find("#link-colour").text))
        self.assertEqual(text, ("*test", "HTML colour form"))
        yield self.screenshot("link")

        yield self.view("muds")
        yield self.step(b.wait_text, "#mud-rows tr", B)
        yield self.step(b.click, f'#mud-rows tr[data-mud="{B}"] td')
        yield self.step(b.wait_text, "#mud-info", '"name": "MudB"')
        yield self.screenshot("muds")

        # A channel: B's message arrives, ours reaches B.
        yield self.join(CHANNEL)
        yield self.b_joins(pair)
        yield pair.cb.call("channel_send", {"channel": CHANNEL, "from_user": "bob", "visname": "Bob",
                                            "message": "%^RED%^hello%^RESET%^ from B"})
        line = yield self.step(b.wait_text, "#chan-lines li", "from B")
        # In colour: the HTML form's span, coloured by /static/pinkfish.css.
        red = yield self.step(lambda: line.find_element("css selector", "span.pf-red"))
        shown = yield self.step(lambda: (red.text, red.value_of_css_property("color"), line.text))
        self.assertEqual(shown[:2], ("hello", "rgba(187, 0, 0, 1)"))
        self.assertNotIn("%^", shown[2])

        def say():
            b.fill("#chan-from", "alice")
            b.fill("#chan-text", "hello from the console &amp;")
            b.find('#chan-say-form button[name="say"]').click()
            b.wait_text("#chan-lines li", "hello from the console &amp;")  # as typed
        yield self.step(say)
        heard = yield pair.cb.inbox.wait("channel_message",
                                          lambda p: p["message"] == "hello from the console &amp;")
        self.assertEqual((heard["from_mud"], heard["from_user"]), (A, "alice"))
        yield self.screenshot("channels")

        # Tells both ways.
        yield pair.cb.call("tell", {"target_mud": A, "target_user": "alice", "from_user": "bob",
                                    "visname": "Bob", "message": "psst, alice"})
        yield self.view("tells")
        yield self.step(b.wait_text, "#tell-lines li", "psst, alice")

        def answer():
            b.fill("#tell-from", "alice")
            b.fill("#tell-text", "hi bob")
            b.find("#tell-form button").click()
            b.wait_text("#tell-lines li", "hi bob")
        yield self.step(answer)
        told = yield pair.cb.inbox.wait("tell_received", lambda p: p["message"] == "hi bob")
        self.assertEqual((told["from_mud"], told["to_user"]), (A, "bob"))
        yield self.screenshot("tells")

        # Finger.
        yield self.view("query")

        def finger():
            b.fill("#finger-user", "bob")
            b.fill("#finger-mud", B)
            b.find("#finger-form button").click()
            return b.wait_text("#query-result", "Town square").text
        shown = yield self.step(finger)
        self.assertIn("Bob the tester", shown)
        yield self.screenshot("finger")

        yield self.view("log")
        yield self.step(b.wait_text, "#event-log li", "tell_received")
        yield self.screenshot("log")

        # The main view for the README: the channel with both sides' lines.
        yield self.view("channels")
        yield self.screenshot("main")

    @defer.inlineCallbacks
    def test_views_follow_the_key_and_log_out_forgets_it(self):
        pair = yield self.start()
        b = self.browser
        yield self.log_in(pair.a)
        tabs = yield self.step(self.shown_tabs)
        self.assertEqual(tabs, ["Link", "MUDs", "Channels", "Tells", "Who / finger / locate", "Event log"])
        reconnect = yield self.step(lambda: b.find("#link-reconnect").is_displayed())
        self.assertTrue(reconnect)

        def log_out():
            b.click("#logout")
            b.wait(lambda: b.find("#login").is_displayed(), "no login form after log out")
            return b.driver.execute_script("return sessionStorage.length")
        stored = yield self.step(log_out)
        self.assertEqual(stored, 0)

        # A key with "tell" only: no mudlist, channels, queries or reconnect.
        yield self.log_in(pair.a, TELL_ONLY_KEY)
        tabs = yield self.step(self.shown_tabs)
        self.assertEqual(tabs, ["Link", "Tells", "Event log"])
        reconnect = yield self.step(lambda: b.find("#link-reconnect").is_displayed())
        self.assertFalse(reconnect)
        yield self.screenshot("tell-only")

    @defer.inlineCallbacks
    def test_remote_markup_is_shown_as_text(self):
        pair = yield self.start()
        b = self.browser
        yield self.log_in(pair.a)
        yield self.join(CHANNEL)
        yield self.b_joins(pair)
        yield pair.cb.call("channel_send", {"channel": CHANNEL, "from_user": "bob", "message": XSS})
        line = yield self.step(b.wait_text, "#chan-lines li", "<img")
        shown = yield self.step(lambda: line.text)
        self.assertIn(XSS, shown)
        images = yield self.step(lambda: b.driver.find_elements("css selector", "#chan-lines img"))
        self.assertEqual(images, [])
        title = yield self.step(lambda: b.driver.title)
        self.assertNotEqual(title, "owned")
        yield self.screenshot("markup-as-text")

    @defer.inlineCallbacks
    def test_html_colour_form_keeps_only_span_classes(self):
        pair = yield self.start()
        b = self.browser
        yield self.log_in(pair.a)
        # The sanitizer the page uses for the gateway's HTML colour form.
        script = """
            const done = arguments[arguments.length - 1];
            import('/static/text.js').then((text) => {
              const box = document.createElement('div');
              text.showRemote(box, arguments[0], true);
              done(box.innerHTML);
            }, (error) => done('import failed: ' + error));
        """
        given = ('<span class="red">hi</span> &lt;b&gt; <img src=x onerror=alert(1)>'
                 '<span class="x" onclick="alert(1)">y</span></span>')
        html = yield self.step(b.driver.execute_async_script, script, given)
        self.assertEqual(html, '<span class="red">hi</span> &lt;b&gt; &lt;img src=x onerror=alert(1)&gt;'
                               '&lt;span class="x" onclick="alert(1)"&gt;y')

    @defer.inlineCallbacks
    def test_reconnects_after_the_gateway_restarts(self):
        pair = yield self.start()
        b = self.browser
        yield self.log_in(pair.a)
        yield self.join(CHANNEL)
        session_id = "return sessionStorage.getItem('i3.session_id')"
        before = yield self.step(b.driver.execute_script, session_id)

        def reload():
            b.driver.refresh()
            b.wait_text("#conn", "online")
            b.click('#tabs button[data-view="channels"]')
            b.wait_text("#chan-tabs button", CHANNEL)  # still joined, shown again
            return b.driver.execute_script(session_id)
        after = yield self.step(reload)
        self.assertEqual(after, before)  # restore_session, not a new session
        self.assertEqual(pair.a.gateway.sessions.count(), 2)  # the console's and the TCP client's

        port = pair.a.web_listener.getHost().port
        yield self.loop.stop_gateway(pair.a)
        yield self.step(b.wait_text, "#conn", "reconnecting")
        yield self.screenshot("reconnecting")
        # Same port, same state: the page finds it again by itself.
        again = yield self.loop.ready_gateway(A, [pair.router], state_dir(self.loop, A),
                                              api={"port": port})
        yield self.step(b.wait_text, "#conn", "online")
        # The old session died with the gateway: the page joined its channel again.
        yield self.b_joins(pair)
        yield pair.cb.call("channel_send", {"channel": CHANNEL, "from_user": "bob",
                                            "message": "after the restart"})
        yield self.step(b.wait_text, "#chan-lines li", "after the restart")
        self.assertTrue(again.gateway.link.ready)
        yield self.screenshot("reconnected")
