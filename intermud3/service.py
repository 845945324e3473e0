"""The gateway as a twistd service: wiring, listening, reload and stop.

`Gateway` is the composition root: it builds every part from one
configuration and hands each only the collaborators it uses, as
constructor arguments; the build order below is the dependency graph.
Values a reload changes (the configuration, the MUD name) are passed as
callables that read them now. It has no sockets of its own, so
integration tests can build one around a `Clock`. `GatewayService` adds what a process needs: the router link as a
child service, the API listeners, SIGHUP reload and the ordered stop.
"""

import signal

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from intermud3 import config as configuration
from intermud3 import logsetup
from intermud3.api.authguard import AuthGuard
from intermud3.api.connection import APIContext, ConnectionRegistry
from intermud3.api.methods import MethodTable, i3_handlers
from intermud3.api.methods import housekeeping
from intermud3.api.rpc import Dispatcher
from intermud3.api.sessions import SessionManager
from intermud3.colour import api as colour_api
from intermud3.endofturn import EndOfTurn
from intermud3.events import EventHub
from intermud3.link import RouterLink, persist
from intermud3.lists import NetworkLists
from intermud3.metrics import Metrics
from intermud3.outbound import Outbox
from intermud3.services.channels import ChannelService
from intermud3.services.i3_errors import ErrorRouter
from intermud3.services.inbound import InboundDispatcher
from intermud3.services.messages import MessageService
from intermud3.services.network import Network
from intermud3.services.presence import Presence
from intermud3.services.queries import Queries
from intermud3.store import open_store

_log = Logger()


class Gateway:
    """Every part of the gateway, built from one configuration."""

    def __init__(self, config, *, clock, connector=None, metrics=None, config_path=None):
        self.config = config
        self.config_path = config_path
        self.clock = clock
        self.metrics = metrics if metrics is not None else Metrics()
        self.started_at = clock.seconds()
        self.store = open_store(config.state.directory, clock=clock,
                                mud_name=config.mud.name, metrics=self.metrics)
        self.lists = NetworkLists(self.store)
        # One flush per reactor turn for every socket we write (endofturn.py).
        self.end_of_turn = EndOfTurn(clock)
        self.link = RouterLink(config, self.store, clock=clock, connector=connector,
                               metrics=self.metrics, end_of_turn=self.end_of_turn)
        persist(self.link, self.store, self.lists, self.metrics)
        self.sessions = SessionManager(config, clock, metrics=self.metrics)
        self.hub = EventHub(self.sessions, clock=clock, metrics=self.metrics)

        # Read at use, so a reload (which replaces self.config) applies.
        def current():
            return self.config

        def mud_name():
            return self.config.mud.name

        # Each part gets only parts built before it; inbound handlers of a
        # type run in the order their services are built here.
        self.inbound = InboundDispatcher(link=self.link, mud_name=mud_name)
        self.presence = Presence(inbound=self.inbound, link=self.link, config=current,
                                 mud_name=mud_name, clock=clock)
        self.queries = Queries(
            inbound=self.inbound, link=self.link, sessions=self.sessions, lists=self.lists,
            presence=self.presence, hub=self.hub, config=current, mud_name=mud_name, clock=clock)
        self.errors = ErrorRouter(inbound=self.inbound, queries=self.queries,
                                  presence=self.presence, hub=self.hub, config=current,
                                  clock=clock)
        self.outbox = Outbox(
            link=self.link, store=self.store, clock=clock, config=current,
            sessions=self.sessions, hub=self.hub, metrics=self.metrics)
        self.channels = ChannelService(
            inbound=self.inbound, link=self.link, outbox=self.outbox, errors=self.errors,
            sessions=self.sessions, lists=self.lists, store=self.store, config=current,
            mud_name=mud_name, clock=clock)
        self.messages = MessageService(
            inbound=self.inbound, link=self.link, outbox=self.outbox, errors=self.errors,
            presence=self.presence, channels=self.channels, lists=self.lists,
            sessions=self.sessions, hub=self.hub, store=self.store, config=current,
            mud_name=mud_name, clock=clock)
        self.network = Network(lists=self.lists, link=self.link, hub=self.hub)
        self.api_connections = ConnectionRegistry(
            lambda: self.config.api.max_connections, self.metrics,
            max_per_ip=lambda: self.config.api.max_connections_per_ip)
        self.auth_guard = AuthGuard(
            lambda: self.config.api.auth.failures,
            clock, self.metrics)
        table = MethodTable(colour_api.wrap({
            **housekeeping.handlers(
                sessions=self.sessions, link=self.link, lists=self.lists, outbox=self.outbox,
                auth_guard=self.auth_guard, started_at=self.started_at, reload=self.reload),
            **i3_handlers(messages=self.messages, channels=self.channels, queries=self.queries,
                          presence=self.presence, network=self.network, mud_name=mud_name),
            "set_options": colour_api.set_options}))
        self.dispatcher = Dispatcher(
            table, self.sessions, max_batch=config.api.max_batch,
            metrics=self.metrics, clock=clock)
        # What the API transports use (api/tcp.py, api/ws.py, api/web.py).
        self.api = APIContext(config=current, clock=clock, sessions=self.sessions,
                              dispatcher=self.dispatcher, connections=self.api_connections,
                              auth_guard=self.auth_guard, end_of_turn=self.end_of_turn)
        self.on_apply = []  # callables(new_config) run after each reload

    @property
    def mud_name(self):
        return self.config.mud.name

    def reload(self):
        """Re-read the config file and apply it.

        Returns a Deferred firing with the `reload_config` result shape. The
        whole reload runs in one reactor turn, so two never overlap.
        """
        return defer.maybeDeferred(self._reload)

    def _reload(self):
        if not self.config_path:
            return {"status": "rejected", "errors": ["no configuration file to reload"]}
        try:
            new = configuration.load(self.config_path)
        except configuration.ConfigError as e:
            _log.error("Reload rejected, old configuration kept: {errors}", errors=e.errors)
            return {"status": "rejected", "errors": list(e.errors)}
        changed = configuration.diff(self.config, new)
        refused = [path for path in changed if path in configuration.RESTART_REQUIRED]
        for path in refused:
            _log.warn("Reload: {key} changed: restart required; the old value stays", key=path)
        new = configuration.with_overrides(
            new, {path: configuration.value_at(self.config, path) for path in refused})
        self.apply(new)
        applied = [p for p in changed if p not in refused]
        _log.info("Configuration reloaded; changed: {changed}", changed=applied)
        result = {"status": "reloaded", "changed": applied}
        if refused:
            result["restart_required"] = refused
        return result

    def apply(self, new):
        """Hand a validated configuration to every part that keeps copies."""
        self.config = new
        self.sessions.reconfigure(new)
        self.channels.reconfigure(new)
        self.link.reconfigure(new)
        self.dispatcher.max_batch = new.api.max_batch
        for hook in self.on_apply:
            hook(new)


class ListenFailed(SystemExit):
    """An API port could not be opened. A SystemExit, so that twistd and
    twist print its one line and exit 1 instead of a traceback."""


class GatewayService(service.MultiService):
    """The process: the gateway, its listeners, SIGHUP reload, ordered stop."""

    # Seconds API clients get to close politely at stop before being dropped.
    client_close_timeout = 3.0

    def __init__(self, config, *, config_path=None, reactor=None, connector=None, metrics=None,
                 log_publisher=None):
        """`log_publisher`, when given (twistd's global one), gets the
        `logging` section's filter in front of its observers while running."""
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.config = config
        self.config_path = config_path
        self._connector = connector
        self._metrics = metrics
        self._log_publisher = log_publisher
        self._log_filter = None
        self.gateway = None
        self.tcp_listener = None
        self.web_listener = None
        self._previous_handlers = {}

    def startService(self):
        from intermud3.api import tcp, web

        if self._log_publisher is not None:
            if logsetup.logging_begun(self._log_publisher):
                self._install_log_filter()
            else:
                # `twist` starts the service before it begins logging; the
                # beginner's start-up buffer must not be wrapped (it would be
                # replayed into itself), so wait until the reactor runs.
                self.reactor.callWhenRunning(lambda: self.running and self._install_log_filter())
        for warning in configuration.warnings(self.config):
            # Not `warning=`: Twisted's legacy log bridge (trial's reporter
            # among its users) reads an event with that key as a Python
            # warning and fails on its missing fields.
            _log.warn("Configuration: {problem}", problem=warning)
        self.gateway = Gateway(
            self.config, clock=self.reactor, connector=self._connector,
            metrics=self._metrics, config_path=self.config_path)
        self.gateway.on_apply.append(self._reconfigure_log_filter)
        self.gateway.link.setServiceParent(self)
        api = self.config.api
        tls = web.make_tls_context(self.config)
        if api.tcp.enabled:
            factory = tcp.make_tcp_factory(self.gateway.api)
            self.tcp_listener = self._listen("api.tcp.port", api.tcp.port, factory, api.host, tls)
        if api.websocket.enabled:
            gateway = self.gateway
            site = web.make_site(gateway.api, link=gateway.link, store=gateway.store,
                                 metrics=gateway.metrics)
            self.gateway.on_apply.append(site.ws_factory.reconfigure)
            self.web_listener = self._listen("api.port", api.port, site, api.host, tls)
        # After the reactor's own handlers, which it installs at startup.
        self.reactor.callWhenRunning(self._install_signal_handlers)
        super().startService()
        _log.info("Gateway started for {mud}", mud=self.config.mud.name)

    def _install_log_filter(self):
        config = self.gateway.config if self.gateway is not None else self.config
        self._log_filter = logsetup.InstalledFilter(config.logging, self._log_publisher)

    def _reconfigure_log_filter(self, new):
        if self._log_filter is not None:
            self._log_filter.reconfigure(new.logging)

    def _listen(self, key, port, factory, host, tls):
        # Twisted's default backlog (50) left clients hanging under a burst
        # of connects: the kernel queue is api.listen_backlog long.
        backlog = self.config.api.listen_backlog
        try:
            if tls is not None:
                return self.reactor.listenSSL(port, factory, tls, backlog=backlog, interface=host)
            return self.reactor.listenTCP(port, factory, backlog=backlog, interface=host)
        except CannotListenError as error:
            # One line naming the setting, not twistd's traceback.
            reason = error.socketError.strerror if isinstance(error.socketError, OSError) else error.socketError
            raise ListenFailed(f"{key}: cannot listen on {host}:{port}: {reason}") from None

    def _install_signal_handlers(self):
        # Handlers only schedule work: the reactor may be in the middle of
        # anything when a signal arrives. SIGTERM/SIGINT are ours too
        # because twistd's own handlers make the process die by the signal
        # after stopping, and an admin's graceful stop must exit 0.
        def on_sighup(signum, frame):
            self.reactor.callFromThread(self._reload_from_signal)

        def on_stop_signal(signum, frame):
            _log.info("Signal {signal}: stopping", signal=signal.Signals(signum).name)
            self.reactor.callFromThread(self.reactor.stop)

        # Operators of the older gateway send SIGUSR1; its default action
        # kills the process. twistd --logfile has a handler that reopens
        # (rotates) the file: keep it, and otherwise log and carry on.
        rotate_log = signal.getsignal(signal.SIGUSR1)
        if not callable(rotate_log):
            rotate_log = None

        def on_sigusr1(signum, frame):
            if rotate_log is not None:
                rotate_log(signum, frame)
                self.reactor.callFromThread(_log.info, "SIGUSR1: log file reopened")
            else:
                self.reactor.callFromThread(
                    _log.info, "SIGUSR1: ignored (no log file to reopen; SIGHUP reloads the configuration)")

        wanted = {signal.SIGHUP: on_sighup, signal.SIGTERM: on_stop_signal,
                  signal.SIGINT: on_stop_signal, signal.SIGUSR1: on_sigusr1}
        try:
            for signum, handler in wanted.items():
                self._previous_handlers[signum] = signal.signal(signum, handler)
        except ValueError:
            pass  # not the main thread (some tests): leave signals alone

    def _restore_signal_handlers(self):
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _reload_from_signal(self):
        _log.info("SIGHUP: reloading the configuration")
        self.gateway.reload().addErrback(
            lambda f: _log.failure("Reload failed", failure=f))

    @defer.inlineCallbacks
    def stopService(self):
        self._restore_signal_handlers()
        gateway = self.gateway
        listeners = [p for p in (self.tcp_listener, self.web_listener) if p is not None]
        yield defer.DeferredList([defer.maybeDeferred(p.stopListening) for p in listeners])
        # API clients get close code 1001; wait (boundedly) for them to go,
        # so no session detaches after the sessions are stopped.
        clients = gateway.api_connections
        clients.close_all(1001)
        try:
            yield clients.when_empty().addTimeout(self.client_close_timeout, self.reactor)
        except defer.TimeoutError:
            _log.warn("API clients still open after {seconds}s; dropping them",
                      seconds=self.client_close_timeout)
            clients.abort_all()
        # The link's stopService sends `shutdown` to the router and closes.
        yield defer.maybeDeferred(super().stopService)
        gateway.channels.stop()
        gateway.outbox.stop()
        gateway.sessions.stop()
        # Queued messages stay on disk and go out after the next start.
        queued = gateway.outbox.depth
        yield gateway.store.close()
        _log.info("Gateway stopped; {queued} outbound message(s) still queued for the next start",
                  queued=queued)
        if self._log_filter is not None:
            self._log_filter.uninstall()
            self._log_filter = None
