"""Configuration: YAML with ${ENV} substitution, validated against a schema.

`load()` returns the whole configuration merged with the defaults (each
field of `SCHEMA` carries its own; `DEFAULTS` gathers them), checked and
normalised (durations float, sizes int), as frozen dataclasses that the
schema builds: `Config`, one class per section (`RouterConfig`,
`ApiConfig`, `AuthConfig`...), lists as tuples and name mappings read-only.
The schema is the one place that knows each key's name, type and default.
Or it raises `ConfigError` carrying every problem found, each as
"key.path: problem (hint)". Error texts never quote a value taken from the
environment: it may be a secret.

`with_overrides(config, {"dotted.path": value})` gives a copy with some
values replaced (reload keeps restart-required keys with it; tests build
their variants with it); `diff(old, new)` names the dotted paths that differ.
"""

import dataclasses
import hashlib
import ipaddress
import math
import os
import re
import types

import yaml

from intermud3 import permissions
from intermud3.mudmode import DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_SEND_BYTES

__all__ = [
    "ConfigError", "DEFAULTS", "LINK_RESTART", "RESTART_REQUIRED",
    "diff", "load", "load_text", "value_at", "warnings", "with_overrides",
]

DEMO_KEY = "demo-key-123"
DEMO_KEY_SHA256 = "sha256:" + hashlib.sha256(DEMO_KEY.encode()).hexdigest()
LEVELS = ("debug", "info", "warn", "error")
FORMATS = ("text", "json")
# The router's flood control counts at most 10 packets a second; the pacer
# caps itself at 9 whatever send_rate says, so above 8 deserves a word.
SEND_RATE_WARNING = 8

# Key paths a reload cannot change (listening sockets, TLS files, the store).
RESTART_REQUIRED = frozenset({
    "api.host", "api.port", "api.tcp.port", "api.tls.cert", "api.tls.key",
    "api.websocket.enabled", "api.tcp.enabled", "api.listen_backlog", "state.directory",
})
# Key paths whose change re-opens the router link.
LINK_RESTART = frozenset({"mud.name", "routers"})


class ConfigError(Exception):
    """The configuration cannot be used; `.errors` lists every reason."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


# --- environment substitution --------------------------------------------

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_NAME_AND_DEFAULT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)
_BAD = object()      # a value already reported as an error: checked no further
_MISSING = object()


class _Substituted(str):
    """A string that came (partly) from the environment.

    `.parsed` is the text re-read as a YAML scalar, used by number and bool
    fields; string fields keep the text itself, so a key "0123" stays text.
    """

    parsed = None


def _reread(text):
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, (dict, list)):
        return text     # only scalars: "[a, b]" from the environment stays text
    return value


# --- schema ---------------------------------------------------------------
#
# Each spec checks and normalises one value; `default` is what a key left out
# of the file gets (CONFIG.md's documented default), _MISSING when required.
# Defaults go through the same ${ENV} substitution and checks as the file.

def _type_name(value):
    if isinstance(value, _Substituted):
        value = value.parsed
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "mapping"}.get(type(value), type(value).__name__)


class _Scalar:
    """A leaf value; `${...}` is substituted before `_check` sees it."""

    def __init__(self, default=_MISSING):
        self.default = default

    def check(self, ctx, value, path):
        value = ctx.resolve(value, path)
        return _BAD if value is _BAD else self._check(ctx, value, path)

    def build(self, value):
        # A _Substituted string becomes a plain one: nothing downstream needs
        # to know where it came from.
        return str(value) if isinstance(value, str) else value


class _Str(_Scalar):
    def __init__(self, default=_MISSING, nullable=False, allow_empty=False):
        super().__init__(default)
        self.nullable = nullable
        self.allow_empty = allow_empty

    def _check(self, ctx, value, path):
        if isinstance(value, _Substituted):
            value = None if self.nullable and value.parsed is None else str(value)
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            return ctx.error(path, f"must be a string, not {_type_name(value)}",
                             "quote it" if isinstance(value, (int, float, bool)) else "write a string")
        if not self.allow_empty and not value.strip():
            return ctx.error(path, "must not be empty", "give a value")
        return value


class _Number(_Scalar):
    """An int or float in a range; `integer` refuses floats, `as_float` normalises."""

    def __init__(self, default=_MISSING, minimum=None, maximum=None, exclusive_minimum=False,
                 integer=False, as_float=False, what=None):
        super().__init__(default)
        self.minimum = minimum
        self.maximum = maximum
        self.exclusive_minimum = exclusive_minimum
        self.integer = integer
        self.as_float = as_float
        self.what = what or ("an integer" if integer else "a number")

    def _check(self, ctx, value, path):
        if isinstance(value, _Substituted):
            value = value.parsed
        kinds = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return ctx.error(path, f"must be {self.what}, not {_type_name(value)}", self._hint())
        if isinstance(value, float) and not math.isfinite(value):
            return ctx.error(path, f"must be {self.what}, not {value}", self._hint())
        too_low = self.minimum is not None and (
            value <= self.minimum if self.exclusive_minimum else value < self.minimum)
        too_high = self.maximum is not None and value > self.maximum
        if too_low or too_high:
            return ctx.error(path, "is out of range", self._hint())
        return float(value) if self.as_float else value

    def _hint(self):
        if self.minimum is not None and self.maximum is not None:
            return f"{self.what} from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"{self.what} {'>' if self.exclusive_minimum else '>='} {self.minimum}"
        return self.what


def _duration(default, zero_ok=False):
    return _Number(default, minimum=0, exclusive_minimum=not zero_ok, as_float=True,
                   what="a duration in seconds")


def _count(default=_MISSING):
    return _Number(default, minimum=1, integer=True, what="an integer")


def _size(default):
    return _Number(default, minimum=1, integer=True, what="a size in bytes (integer)")


def _port(default=_MISSING):
    return _Number(default, minimum=0, maximum=65535, integer=True, what="a port number")


class _Bool(_Scalar):
    def _check(self, ctx, value, path):
        if isinstance(value, _Substituted):
            value = value.parsed
        if not isinstance(value, bool):
            return ctx.error(path, f"must be true or false, not {_type_name(value)}", "write true or false")
        return value


class _Enum(_Scalar):
    def __init__(self, choices, default=_MISSING):
        super().__init__(default)
        self.choices = choices

    def _check(self, ctx, value, path):
        if isinstance(value, _Substituted):
            value = str(value)
        if value not in self.choices:
            return ctx.error(path, "is not a known value", "one of " + ", ".join(self.choices))
        return value


class _LevelName(_Enum):
    """A log level, in any case (`DEBUG` as from Python's logging); `warning`
    and `critical`, Python's names, mean warn and error."""

    ALIASES = {"warning": "warn", "critical": "error"}

    def __init__(self, default=_MISSING):
        super().__init__(LEVELS, default)

    def _check(self, ctx, value, path):
        if isinstance(value, str):
            value = value.lower()
            value = self.ALIASES.get(value, value)
        return super()._check(ctx, value, path)


def log_components():
    """Every name `logging.components` accepts: each module and package of
    intermud3, dotted from the package (`link`, `api`, `api.tcp`), found
    on disk so that nothing is imported."""
    root = os.path.dirname(os.path.abspath(__file__))
    names = set()
    for directory, _subdirs, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        prefix = [] if relative == "." else relative.split(os.sep)
        if "__pycache__" in prefix:
            continue
        for file in files:
            if file.endswith(".py") and file != "__main__.py":
                parts = prefix + ([] if file == "__init__.py" else [file[:-3]])
                if parts:
                    names.add(".".join(parts))
    return names


class _List:
    """A list; given in the file it replaces the default whole."""

    def __init__(self, item, default=_MISSING, min_items=0):
        self.item = item
        self.default = default
        self.min_items = min_items

    def check(self, ctx, value, path):
        if value is None:
            value = []
        if not isinstance(value, list):
            return ctx.error(path, f"must be a list, not {_type_name(value)}", "write [a, b] or one '- item' per line")
        if len(value) < self.min_items:
            return ctx.error(path, f"needs at least {self.min_items} entr{'y' if self.min_items == 1 else 'ies'}",
                             "add an entry")
        return [self.item.check(ctx, item, f"{path}[{i}]") for i, item in enumerate(value)]

    def build(self, value):
        return tuple(self.item.build(item) for item in value)


class _NameMap:
    """A mapping of free names to values; given in the file it replaces the default whole."""

    def __init__(self, value, default, names=None):
        self.value = value
        self.default = default
        self.names = names   # a callable giving the allowed names, or None for any

    def check(self, ctx, value, path):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return ctx.error(path, f"must be a mapping, not {_type_name(value)}", "write {name: value, ...}")
        result = {}
        allowed = self.names() if self.names is not None else None
        for name, item in value.items():
            if not isinstance(name, str) or not name:
                ctx.error(f"{path}.{name}", "names must be non-empty strings", "quote the name")
                continue
            if allowed is not None and name not in allowed:
                close = _close_matches(name, sorted(allowed))
                ctx.error(f"{path}.{name}", "is not a known name",
                          f"did you mean {close[0]}?" if close else
                          "one of " + ", ".join(sorted(n for n in allowed if "." not in n)) + " or a module below one")
                continue
            result[name] = self.value.check(ctx, item, f"{path}.{name}")
        return result

    def build(self, value):
        return types.MappingProxyType({name: self.value.build(item) for name, item in value.items()})


class _Optional:
    """None, or a value `spec` accepts; left out, None."""

    default = None

    def __init__(self, spec):
        self.spec = spec

    def check(self, ctx, value, path):
        return None if value is None else self.spec.check(ctx, value, path)

    def build(self, value):
        return None if value is None else self.spec.build(value)


_SECTION_TYPES = {}     # class name -> the frozen dataclass a _Section builds


class _Section:
    """Fixed keys; a key left out gets its field's default (a left-out section, all of them).

    `type_name` names the frozen dataclass whose instances `build` makes
    from a checked mapping; sections of the same name share one class.
    """

    def __init__(self, type_name, fields):
        self.fields = fields
        self.type = _SECTION_TYPES.get(type_name)
        if self.type is None:
            self.type = dataclasses.make_dataclass(type_name, list(fields), frozen=True)
            self.type.__module__ = __name__
            _SECTION_TYPES[type_name] = self.type
        assert [f.name for f in dataclasses.fields(self.type)] == list(fields), type_name

    def build(self, value):
        if isinstance(value, self.type):
            return value
        built = {}
        for key, spec in self.fields.items():
            given = value.get(key, spec.default)    # only with_overrides leaves keys out
            if given is _MISSING:
                raise KeyError(f"{self.type.__name__} needs {key}")
            built[key] = spec.build(given)
        return self.type(**built)

    @property
    def default(self):
        return {key: spec.default for key, spec in self.fields.items() if spec.default is not _MISSING}

    def check(self, ctx, value, path):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return ctx.error(path or "(top level)", f"must be a mapping, not {_type_name(value)}",
                             "write key: value pairs")
        for key in value:
            if key not in self.fields:
                ctx.unknown_key(path, key, self.fields)
        result = {}
        for key, spec in self.fields.items():
            sub = f"{path}.{key}" if path else key
            given = value.get(key, spec.default)
            if given is _MISSING:
                result[key] = ctx.error(sub, "is required", _REQUIRED_HINTS.get(sub, "add it"))
            else:
                result[key] = spec.check(ctx, given, sub)
        return result


_REQUIRED_HINTS = {
    "mud.name": "the MUD's I3 name, e.g. name: ${I3_MUD_NAME}",
}


def _rate(per_minute=_MISSING, burst=_MISSING):
    return _Section("RateConfig", {
        "per_minute": _Number(per_minute, minimum=0, exclusive_minimum=True, as_float=True,
                              what="a rate per minute"),
        "burst": _count(burst)})


_ROUTER = _Section("RouterEntry", {"name": _Str(), "host": _Str(), "port": _port(), "tls": _Bool(False)})
_API_KEY = _Section("ApiKeyConfig", {
    "key": _Str(),
    "mud_name": _Optional(_Str()),    # left out: mud.name (filled in by _cross_check)
    "permissions": _List(_Enum(permissions.NAMES), min_items=1),
    "rate_limit": _Optional(_rate()),
})

SCHEMA = _Section("Config", {
    "mud": _Section("MudConfig", {
        "name": _Str(),
        "port": _port(4000),
        "admin_email": _Str("admin@example.org", allow_empty=True),
        "mudlib": _Str("ExampleLib", allow_empty=True),
        "base_mudlib": _Str("ExampleLib", allow_empty=True),
        "driver": _Str("Twisted", allow_empty=True),
        "mud_type": _Str("Other", allow_empty=True),
        "open_status": _Str("open", allow_empty=True),
        "services": _NameMap(_Number(minimum=0, integer=True), {
            "tell": 1, "emoteto": 1, "channel": 1, "who": 1, "finger": 1,
            "locate": 1, "ucache": 1, "auth": 1}),
    }),
    "routers": _List(_ROUTER, min_items=1, default=[
        {"name": "*dalet", "host": "97.107.133.86", "port": 8787, "tls": False},
        {"name": "*i4", "host": "204.209.44.3", "port": 8080, "tls": False},
    ]),
    "router": _Section("RouterConfig", {
        "connect_timeout": _duration(30),
        "handshake_timeout": _duration(60),
        "backoff": _Section("BackoffConfig", {
            "initial": _duration(1), "max": _duration(300),
            "factor": _Number(2, minimum=1, as_float=True), "jitter": _Bool(True)}),
        # Silence from the router before a probe, and how long the probe
        # waits: a half-open link is noticed within their sum (90 s).
        "keepalive_interval": _duration(300),
        "keepalive_timeout": _duration(60),
        "max_frame_bytes": _size(DEFAULT_MAX_FRAME_BYTES),
        "max_send_bytes": _size(DEFAULT_MAX_SEND_BYTES),
        "send_rate": _Number(5, minimum=0, as_float=True, what="packets per second"),
        "queue": _Section("QueueConfig", {"enabled": _Bool(True), "max_messages": _count(1000), "ttl": _duration(300)}),
    }),
    "api": _Section("ApiConfig", {
        "host": _Str("127.0.0.1"),
        "port": _port(8080),
        "tls": _Section("TlsConfig", {"cert": _Str(None, nullable=True), "key": _Str(None, nullable=True)}),
        "websocket": _Section("WebSocketConfig", {
            "enabled": _Bool(True), "max_message_bytes": _size(65536), "ping_interval": _duration(30),
            "ping_timeout": _duration(10), "allowed_origins": _List(_Str(), [])}),
        # Left out (None): on when api.host is loopback (filled in by _cross_check).
        "console": _Section("ConsoleConfig", {"enabled": _Optional(_Bool())}),
        "tcp": _Section("TcpConfig", {
            "enabled": _Bool(True), "port": _port(8081), "max_line_bytes": _size(65536),
            "idle_timeout": _duration(0, zero_ok=True)}),
        "auth": _Section("AuthConfig", {
            "enabled": _Bool(True),
            "timeout": _duration(10),
            # Wrong keys: a growing delay per connection and per source
            # address, then the connection is closed.
            "failures": _Section("AuthFailuresConfig", {
                "delay": _duration(1), "max_delay": _duration(30),
                "max_per_connection": _count(5), "forget_after": _duration(600),
                "log_interval": _duration(60)}),
            "api_keys": _List(_API_KEY, [
                {"key": "${I3_API_KEY:-demo-key-123}", "permissions": ["*"], "rate_limit": None}]),
        }),
        "rate_limits": _Section("RateLimitsConfig", {
            "default": _rate(per_minute=100, burst=20),
            "by_method": _NameMap(_rate(), {"tell": {"per_minute": 30, "burst": 10}})}),
        "session": _Section("SessionConfig", {
            "timeout": _duration(3600), "max_queue_size": _count(1000), "queue_ttl": _duration(300),
            "max_pending_queries": _count(20)}),
        "max_connections": _count(1000),
        # 0: no bound per address but api.max_connections (a MUD's own
        # clients often share one address; the eviction of unauthenticated
        # connections is what keeps a flood from locking the MUD out).
        "max_connections_per_ip": _Number(0, minimum=0, integer=True, what="an integer"),
        "header_timeout": _duration(10),
        "listen_backlog": _count(1024),
        "max_batch": _count(50),
        "max_send_buffer_bytes": _size(1048576),
    }),
    "presence": _Section("PresenceConfig", {"ttl": _duration(120), "max_users": _count(1024)}),
    "channels": _Section("ChannelsConfig", {
        "default": _List(_Str(), []),
        "history": _Section("HistoryConfig", {"enabled": _Bool(True), "max_per_channel": _count(10000)}),
        "listen_wait": _duration(5),
    }),
    "state": _Section("StateConfig", {"directory": _Str("state")}),
    "logging": _Section("LoggingConfig", {
        "level": _LevelName("info"), "format": _Enum(FORMATS, "text"),
        "components": _NameMap(_LevelName(), {}, names=log_components),
    }),
})

# CONFIG.md's documented defaults as one mapping (mud.name has none).
DEFAULTS = SCHEMA.default

# The section classes by name (Config, MudConfig, RouterConfig, ApiConfig,
# AuthConfig, ...): for isinstance checks and type hints.
globals().update(_SECTION_TYPES)
__all__ += sorted(_SECTION_TYPES)


# --- the checker ----------------------------------------------------------

def _close_matches(word, candidates):
    # difflib is imported only for a configuration with an error in it:
    # a gateway that starts cleanly never needs it.
    import difflib
    return difflib.get_close_matches(word, candidates, n=1)


class _Checker:
    def __init__(self, environ):
        self.environ = environ
        self.errors = []

    def error(self, path, problem, hint):
        self.errors.append(f"{path}: {problem} ({hint})")
        return _BAD

    def unknown_key(self, path, key, known):
        where = f"{path}.{key}" if path else str(key)
        close = _close_matches(str(key), list(known))
        hint = f"did you mean '{close[0]}'?" if close else "known keys: " + ", ".join(known)
        self.error(where, "unknown key", hint)

    def resolve(self, value, path):
        """Substitute ${NAME} / ${NAME:-default} in a string; other values pass."""
        if not isinstance(value, str) or "${" not in value:
            return value
        problems = []

        def replace(match):
            parts = _NAME_AND_DEFAULT.match(match.group(1))
            if parts is None:
                problems.append(("malformed reference ${...}",
                                 "write ${NAME} or ${NAME:-default}"))
                return ""
            name, fallback = parts.group(1), parts.group(2)
            found = self.environ.get(name)
            if found is None or (fallback is not None and found == ""):
                if fallback is None:
                    problems.append((f"environment variable {name} is not set",
                                     f"set {name}, or write ${{{name}:-default}}"))
                    return ""
                return fallback
            return found

        if "${" in _REFERENCE.sub("", value):
            problems.append(("unterminated ${", "close it with }"))
        text = _REFERENCE.sub(replace, value)
        for problem, hint in problems:
            self.error(path, problem, hint)
        if problems:
            return _BAD
        result = _Substituted(text)
        result.parsed = _reread(text)
        return result


def is_loopback(host):
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_SHA256_KEY = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


def _get(config, *keys):
    """config[k1][k2]..., or _BAD when a level was refused."""
    value = config
    for key in keys:
        if not isinstance(value, dict):
            return _BAD
        value = value.get(key, _BAD)
    return value


def _cross_check(ctx, config):
    """Rules that tie several keys together; skips values already refused."""
    mud_name = _get(config, "mud", "name")
    host = _get(config, "api", "host")
    loopback = host is not _BAD and is_loopback(host)
    enabled = _get(config, "api", "auth", "enabled")
    keys = _get(config, "api", "auth", "api_keys")

    console = _get(config, "api", "console")
    if isinstance(console, dict) and console.get("enabled") is None:
        console["enabled"] = loopback
    if enabled is False and host is not _BAD and not loopback:
        ctx.error("api.auth.enabled", "false is refused while api.host is not a loopback address",
                  "enable auth, or set api.host to 127.0.0.1 for local testing")
    if enabled is True and keys == []:
        ctx.error("api.auth.api_keys", "no keys while auth is enabled", "add a key")
    if isinstance(keys, list):
        seen = set()
        for i, entry in enumerate(keys):
            if entry is _BAD:
                continue
            path = f"api.auth.api_keys[{i}]"
            key = entry["key"]
            if key is not _BAD:
                if key.lower().startswith("sha256:"):
                    if not _SHA256_KEY.match(key):
                        ctx.error(f"{path}.key", "is not a valid sha256 digest",
                                  "write sha256: followed by 64 hex digits")
                    else:
                        key = entry["key"] = "sha256:" + key[7:].lower()
                if key in seen:
                    ctx.error(f"{path}.key", "is the same as an earlier key", "give each key once")
                seen.add(key)
                if key in (DEMO_KEY, DEMO_KEY_SHA256) and host is not _BAD and not loopback:
                    ctx.error(f"{path}.key", f"the demo key {DEMO_KEY} is refused while api.host "
                              "is not a loopback address",
                              "set I3_API_KEY to a secret key, or listen on 127.0.0.1")
            if entry["mud_name"] is None and mud_name is not _BAD:
                entry["mud_name"] = mud_name
            elif _BAD not in (entry["mud_name"], mud_name) and entry["mud_name"] != mud_name:
                ctx.error(f"{path}.mud_name", "differs from mud.name",
                          "the gateway never speaks for another MUD: use mud.name here")

    routers = _get(config, "routers")
    if isinstance(routers, list):
        names = set()
        for i, router in enumerate(routers):
            name = _get(router, "name")
            if name is _BAD:
                continue
            if not name.startswith("*"):
                ctx.error(f"routers[{i}].name", "must start with '*'", "I3 router names look like *dalet")
            if name.lower() in names:
                ctx.error(f"routers[{i}].name", "is listed twice", "give each router once")
            names.add(name.lower())

    cert, tls_key = _get(config, "api", "tls", "cert"), _get(config, "api", "tls", "key")
    if _BAD not in (cert, tls_key) and (cert is None) != (tls_key is None):
        ctx.error("api.tls", "cert and key go together", "give both files, or neither")

    api_port, tcp_port = _get(config, "api", "port"), _get(config, "api", "tcp", "port")
    if (_get(config, "api", "tcp", "enabled") is True and _BAD not in (api_port, tcp_port)
            and api_port == tcp_port != 0):
        ctx.error("api.tcp.port", "is the same as api.port", "give the TCP API a port of its own")

    initial = _get(config, "router", "backoff", "initial")
    longest = _get(config, "router", "backoff", "max")
    if _BAD not in (initial, longest) and initial > longest:
        ctx.error("router.backoff.initial", "is larger than router.backoff.max", "lower it or raise max")


# --- loading --------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{key}' is given twice", key_node.start_mark)
                keys.add(key)
            except TypeError:
                pass    # an unhashable key: the base class refuses it
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                              _StrictLoader.construct_mapping)


def load_text(text, environ=None, *, source="config"):
    """Parse, substitute, merge and check a configuration held in `text`."""
    if environ is None:
        environ = os.environ
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{source}: YAML syntax error{where}: {e.problem or e.context} "
                           "(fix the file's syntax)"]) from None
    except yaml.YAMLError as e:
        raise ConfigError([f"{source}: not valid YAML: {e} (fix the file's syntax)"]) from None
    if data is None:
        raise ConfigError([f"{source}: the file is empty (it needs at least mud.name)"])
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping, not {_type_name(data)} "
                           "(write key: value pairs, e.g. mud: {name: MyMud})"])
    ctx = _Checker(environ)
    config = SCHEMA.check(ctx, data, "")
    _cross_check(ctx, config)
    if ctx.errors:
        raise ConfigError(ctx.errors)
    return SCHEMA.build(config)


def load(path, environ=None):
    """Read the file at `path`; see `load_text`."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file (check the --config path)"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text (save the file as UTF-8)"]) from None
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror} (check the path and its permissions)"]) from None
    return load_text(text, environ, source=str(path))


# --- after loading --------------------------------------------------------

def warnings(config):
    """Things that load but deserve a line in the log."""
    found = []
    if config.router.send_rate > SEND_RATE_WARNING:
        found.append(f"router.send_rate: above {SEND_RATE_WARNING} packets per second (the pacer "
                     "still never sends more than 9 weighted packets in one second)")
    auth = config.api.auth
    if not auth.enabled:
        found.append("api.auth.enabled: false, every connection is trusted (local testing only)")
    if "*" in config.api.websocket.allowed_origins:
        found.append('api.websocket.allowed_origins: "*" lets any web page the admin opens '
                     "use the gateway (list the origins that may connect)")
    for i, entry in enumerate(auth.api_keys):
        if entry.key in (DEMO_KEY, DEMO_KEY_SHA256):
            found.append(f"api.auth.api_keys[{i}].key: the demo key is in use "
                         "(local testing only: set I3_API_KEY)")
    return found


def diff(old, new):
    """Key paths whose value differs; fixed sections are compared key by key,
    lists and name mappings as a whole."""
    changed = []
    _diff(SCHEMA, old, new, "", changed)
    return changed


def _diff(spec, old, new, path, changed):
    if isinstance(spec, _Section):
        for key, sub in spec.fields.items():
            _diff(sub, getattr(old, key), getattr(new, key), f"{path}.{key}" if path else key, changed)
    elif old != new:
        changed.append(path)


def value_at(config, path):
    """The value at a dotted key path such as "api.tcp.port"."""
    for key in path.split("."):
        config = getattr(config, key)
    return config


def with_overrides(config, overrides):
    """A copy of `config` with each dotted path of `overrides` set to its value.

    A value may be given as the YAML would load it (a mapping for a section,
    a list for a list): it is built like a loaded one, keys it leaves out
    taking the schema's defaults (not ${ENV}-substituted). Values are not
    checked: this is for reload (keeping restart-required keys) and for
    tests, not for input from users."""
    for path, value in overrides.items():
        config = _override(SCHEMA, config, path.split("."), value, path)
    return config


def _override(spec, current, keys, value, path):
    if not keys:
        return spec.build(value)
    if not isinstance(spec, _Section) or keys[0] not in spec.fields:
        raise KeyError(f"{path}: not a key of the configuration")
    key = keys[0]
    inner = _override(spec.fields[key], getattr(current, key), keys[1:], value, path)
    return dataclasses.replace(current, **{key: inner})
