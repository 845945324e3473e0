"""`intermud3 collect -c FILE DIR`: a support bundle, safe to hand over.

DIR (created, mode 700) receives: versions, the configuration with every
secret replaced, the doctor's report, /health, /api/info and a /metrics
snapshot, and the last lines of the log file when one is given; then
DIR.tar.gz beside it. Every file is readable by its owner only.
"""

import io
import os
import platform
import sys
import tarfile
from importlib import metadata

import yaml

import intermud3
from intermud3 import config as configuration
from intermud3 import doctor

REDACTED = "<redacted>"
# Keys whose values are secrets wherever they appear in a config file.
SECRET_KEYS = {"key", "password", "secret", "token", "api_key"}
LOG_LINES = 2000   # lines kept from the end of the log file
PACKAGES = ("twisted", "autobahn", "txaio", "pyyaml", "prometheus-client")


def redact(value):
    """The value with every secret-named key's value replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if str(k).lower() in SECRET_KEYS and v not in (None, "") else redact(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def versions():
    lines = [f"intermud3 {intermud3.__version__}", f"python {sys.version.split()[0]}",
             f"platform {platform.platform()}"]
    for package in PACKAGES:
        try:
            lines.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{package} not installed")
    return "\n".join(lines) + "\n"


def tail(path, count=LOG_LINES):
    with open(path, encoding="utf-8", errors="replace") as lines:
        kept = lines.readlines()[-count:]
    return "".join(kept)


def _write(directory, name, text):
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def run(path, directory, out, log_file=None, environ=None):
    """Write the bundle; 0 when it was written (whatever the gateway's
    health), 1 when the config file cannot be read at all."""
    try:
        with open(path, encoding="utf-8") as source:
            raw = yaml.safe_load(source)
    except (OSError, yaml.YAMLError) as error:
        print(f"{path}: cannot read ({error})", file=out)
        return 1
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    _write(directory, "versions.txt", versions())
    # As written (with ${VAR} references, never their values), secrets out.
    _write(directory, "config.redacted.yaml", yaml.safe_dump(redact(raw), sort_keys=False))
    report = io.StringIO()
    doctor.run(path, report, environ)
    _write(directory, "doctor.txt", report.getvalue())
    try:
        config = configuration.load(path, environ)
    except configuration.ConfigError:
        config = None
    if config is not None and config.api.websocket.enabled:
        url = doctor.base_url(config)
        for name, page in (("health.json", "/health"), ("api-info.json", "/api/info"),
                           ("metrics.txt", "/metrics")):
            try:
                text = doctor.http_text(url + page)
            except OSError as error:
                text = f"{url}{page} did not answer: {error}\n"
            _write(directory, name, text)
    if log_file:
        try:
            _write(directory, "log-tail.txt", tail(log_file))
        except OSError as error:
            _write(directory, "log-tail.txt", f"{log_file}: cannot read ({error})\n")
    archive = directory.rstrip(os.sep) + ".tar.gz"
    fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw_archive, tarfile.open(fileobj=raw_archive, mode="w:gz") as bundle:
        bundle.add(directory, arcname=os.path.basename(directory.rstrip(os.sep)))
    print(f"collected in {directory} and {archive} (owner-only)", file=out)
    return 0
