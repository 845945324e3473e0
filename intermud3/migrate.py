"""`intermud3 migrate-config OLD.yaml`: the older Python I3 gateway's
config.yaml (its `mud`, `router`, `gateway`, `api`, `logging`, `channels`,
`state`, `metrics`, `development` sections) rewritten for this gateway.

`migrate(old) -> (new, dropped)`: `new` is a mapping ready for YAML;
`dropped` lists every old key path that was not carried over, with why, so
nothing is lost without a word. Values are copied as written, `${VAR:x}`
references turned into this gateway's `${VAR:-x}`, so secrets taken from
the environment stay in the environment.
"""

import re

import yaml

_OLD_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):(?!-)")

# Old key -> this gateway's key, for values carried unchanged.
_MUD_KEYS = ("name", "port", "admin_email", "mudlib", "base_mudlib", "driver", "mud_type", "open_status")
_COMPONENTS = {"network": "link", "services": "services", "api": "api", "state": "state"}
_WHY = {
    "gateway": "the older gateway's MUD-side socket protocol; MUDs use the JSON-RPC API (api.*) here",
    "metrics": "metrics are always served at /metrics on api.port",
    "development": "no development mode; set logging.level: debug for a trace",
}


def _env(value):
    """`${VAR:default}` (the older gateway's form) as `${VAR:-default}`."""
    if isinstance(value, str):
        return _OLD_REFERENCE.sub(r"${\1:-", value)
    if isinstance(value, list):
        return [_env(item) for item in value]
    if isinstance(value, dict):
        return {key: _env(item) for key, item in value.items()}
    return value


class _Migration:
    def __init__(self, old):
        self.old = old
        self.new = {}
        self.dropped = []

    def drop(self, path, why):
        self.dropped.append(f"{path}: not carried over: {why}")

    def put(self, path, value):
        """Set new[a][b]... = value for the dotted `path`."""
        *sections, last = path.split(".")
        target = self.new
        for section in sections:
            target = target.setdefault(section, {})
        target[last] = _env(value)

    def copy(self, old_section, old_key, new_path):
        """Move old_section[old_key], when present, to `new_path`."""
        if isinstance(old_section, dict) and old_key in old_section:
            self.put(new_path, old_section.pop(old_key))

    def rest(self, section, prefix, why):
        """Every key left in `section` is dropped, named by its full path."""
        if isinstance(section, dict):
            for key in section:
                self.drop(f"{prefix}.{key}", why)


def migrate(old):
    """(new config mapping, list of "path: not carried over (why)")."""
    if not isinstance(old, dict):
        raise ValueError("the old configuration must be a YAML mapping")
    old = {key: (dict(value) if isinstance(value, dict) else value) for key, value in old.items()}
    m = _Migration(old)
    _mud(m, old.pop("mud", None) or {})
    _routers(m, old.pop("router", None) or {})
    _api(m, old.pop("api", None) or {})
    _logging(m, old.pop("logging", None) or {})
    _channels(m, old.pop("channels", None) or {})
    state = old.pop("state", None) or {}
    m.copy(state, "directory", "state.directory")
    m.rest(state, "state", "the state store is SQLite, written as it changes")
    for key, value in old.items():
        why = _WHY.get(key, "not a setting of the older gateway this command knows")
        if isinstance(value, dict) and value:
            m.rest(value, key, why)
        else:
            m.drop(key, why)
    return m.new, m.dropped


def _mud(m, mud):
    if "name" not in mud:
        m.put("mud.name", "${I3_MUD_NAME}")
        m.dropped.append("mud.name: not in the old file; set I3_MUD_NAME or write the name here")
    for key in _MUD_KEYS:
        m.copy(mud, key, f"mud.{key}")
    services = mud.pop("services", None)
    if isinstance(services, dict):
        # The older file also listed packet names (chanlist-req, ...) as
        # services; a router wants service names only.
        kept = {name: value for name, value in services.items() if "-" not in name}
        for name in services:
            if name not in kept:
                m.drop(f"mud.services.{name}", "a packet name, not an I3 service")
        m.put("mud.services", kept)
    m.rest(mud, "mud", "no such MUD setting here; OOB services are not offered")


def _routers(m, router):
    routers = []
    primary = router.pop("primary", None) or {}
    if primary:
        entry = {key: primary.pop(key) for key in ("name", "host", "port") if key in primary}
        if "password" in primary:
            primary.pop("password")
            m.drop("router.primary.password", "the router hands out the password at the first "
                   "handshake and the gateway keeps it in its state store")
        m.rest(primary, "router.primary", "unknown router setting")
        routers.append(entry)
    for index, fallback in enumerate(router.pop("fallback", None) or []):
        path = f"router.fallback[{index}]"
        if not isinstance(fallback, dict) or not fallback.get("name"):
            m.drop(path, "a router entry needs its I3 name (such as *dalet); add it to routers by hand")
            continue
        routers.append({key: fallback[key] for key in ("name", "host", "port") if key in fallback})
    if routers:
        m.put("routers", routers)
    else:
        m.dropped.append("routers: none in the old file; the shipped defaults (*dalet, *i4) apply")
    connection = router.pop("connection", None) or {}
    m.copy(connection, "timeout", "router.connect_timeout")
    m.copy(connection, "keepalive_interval", "router.keepalive_interval")
    m.copy(connection, "reconnect_delay", "router.backoff.initial")
    if "max_reconnect_attempts" in connection:
        connection.pop("max_reconnect_attempts")
        m.drop("router.connection.max_reconnect_attempts",
               "the gateway retries for ever, with backoff up to router.backoff.max")
    m.rest(connection, "router.connection", "unknown connection setting")
    m.rest(router, "router", "unknown router setting")


def _api(m, api):
    if "enabled" in api:
        api.pop("enabled")
        m.drop("api.enabled", "the API is what the gateway is for; turn off api.tcp/api.websocket instead")
    m.copy(api, "host", "api.host")
    m.copy(api, "port", "api.port")
    tcp = api.pop("tcp", None) or {}
    m.copy(tcp, "enabled", "api.tcp.enabled")
    m.copy(tcp, "port", "api.tcp.port")
    m.rest(tcp, "api.tcp", "no such TCP setting here; api.max_connections bounds both transports")
    ws = api.pop("websocket", None) or {}
    for key in ("enabled", "ping_interval", "ping_timeout"):
        m.copy(ws, key, f"api.websocket.{key}")
    m.copy(ws, "max_frame_size", "api.websocket.max_message_bytes")
    m.rest(ws, "api.websocket", "no such WebSocket setting here")
    rate_limits = api.pop("rate_limits", None) or {}
    default = rate_limits.pop("default", None)
    burst = 20
    if isinstance(default, dict):
        m.put("api.rate_limits.default", default)
        burst = default.get("burst", burst)
    by_method = rate_limits.pop("by_method", None) or {}
    if by_method:
        # The older file gives a bare number a minute; here each method has a bucket.
        m.put("api.rate_limits.by_method", {
            method: value if isinstance(value, dict) else {"per_minute": value, "burst": _burst(value, burst)}
            for method, value in by_method.items()})
    m.rest(rate_limits, "api.rate_limits", "no such rate-limit setting")
    _auth(m, api.pop("auth", None) or {}, burst)
    session = api.pop("session", None) or {}
    for key in ("timeout", "max_queue_size", "queue_ttl"):
        m.copy(session, key, f"api.session.{key}")
    m.rest(session, "api.session", "sessions are cleaned up as they expire")
    metrics = api.pop("metrics", None)
    if metrics is not None:
        m.drop("api.metrics", _WHY["metrics"])
    m.rest(api, "api", "no such API setting here")


def _burst(per_minute, default):
    """The default burst, but never more than a minute's worth of tokens."""
    if isinstance(per_minute, (int, float)) and per_minute >= 1:
        return min(default, int(per_minute))
    return default


def _auth(m, auth, burst):
    m.copy(auth, "enabled", "api.auth.enabled")
    keys = []
    for index, old_key in enumerate(auth.pop("api_keys", None) or []):
        path = f"api.auth.api_keys[{index}]"
        if not isinstance(old_key, dict) or "key" not in old_key:
            m.drop(path, "an API key entry needs `key`")
            continue
        entry = {"key": old_key["key"], "permissions": old_key.get("permissions") or ["*"]}
        if old_key.get("mud_name") is not None and _env(old_key["mud_name"]) != m.new["mud"]["name"]:
            m.drop(f"{path}.mud_name", f"{old_key['mud_name']!r} is not this MUD: the gateway speaks "
                   "only as mud.name, so the key now does too")
        if "rate_limit_override" in old_key:
            per_minute = old_key["rate_limit_override"]
            entry["rate_limit"] = {"per_minute": per_minute, "burst": _burst(per_minute, burst)}
        for key in old_key:
            if key not in ("key", "permissions", "mud_name", "rate_limit_override"):
                m.drop(f"{path}.{key}", "no such key setting")
        keys.append(entry)
    if keys:
        m.put("api.auth.api_keys", keys)
    m.rest(auth, "api.auth", "TLS is api.tls.cert/key; keys are the only credential")


def _logging(m, logging):
    if "level" in logging:
        m.put("logging.level", logging.pop("level"))
    if "format" in logging:
        m.put("logging.format", logging.pop("format"))
    components = logging.pop("components", None) or {}
    carried = {}
    for name, level in components.items():
        if name in _COMPONENTS:
            carried[_COMPONENTS[name]] = level
        else:
            m.drop(f"logging.components.{name}", "no such component here; see logging.components in etc/intermud3.yaml")
    if carried:
        m.put("logging.components", carried)
    for key in ("file", "max_size", "backup_count"):
        if key in logging:
            logging.pop(key)
            m.drop(f"logging.{key}", "give the file to twistd (--logfile PATH), or log to the journal")
    m.rest(logging, "logging", "no such logging setting")


def _channels(m, channels):
    default = channels.pop("default_channels", None) or []
    names = [entry["name"] if isinstance(entry, dict) else entry for entry in default]
    if names:
        m.put("channels.default", names)
    for key in list(channels):
        channels.pop(key)
        if key == "history_size":
            m.drop("channels.history_size", "history keeps channels.history.max_per_channel messages a channel")
        else:
            m.drop(f"channels.{key}", "no such channel setting; a message's size bound is router.max_send_bytes")


def migrate_text(text):
    """(YAML text of the new config, dropped list) for the old file's text."""
    new, dropped = migrate(yaml.safe_load(text) or {})
    header = "# Migrated by `intermud3 migrate-config` from the older gateway's configuration.\n"
    if dropped:
        header += "# Not carried over:\n" + "".join(f"#   {line}\n" for line in dropped)
    return header + yaml.safe_dump(new, sort_keys=False, allow_unicode=True), dropped
