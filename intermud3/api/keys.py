"""The configured API keys (`api.auth.api_keys`) and what each one grants.

Only digests are held: a plain key is hashed on load, a `sha256:HEX` key is
its digest already. A presented key is hashed and compared in constant time
with every configured digest. A key is named by its `key_id` (the first 8
hex digits of its digest) wherever one must be named: logs, sessions.
"""

import hashlib
from hmac import compare_digest


class KeyInfo:
    """What a key grants. Holds the key's digest, never the key itself."""

    def __init__(self, key_id, digest, mud_name, permissions, rate_limit=None):
        self.key_id = key_id
        self.digest = digest
        self.mud_name = mud_name
        self.permissions = frozenset(permissions)
        self.rate_limit = rate_limit

    def __repr__(self):
        return f"<KeyInfo {self.key_id} mud={self.mud_name!r} permissions={sorted(self.permissions)}>"


def key_digest(key):
    """The sha256 digest a configured key stands for ("sha256:HEX" or plain)."""
    if not isinstance(key, str) or not key:
        raise ValueError("api key must be a non-empty string")
    if key.startswith("sha256:"):
        hexdigest = key[len("sha256:"):]
        try:
            digest = bytes.fromhex(hexdigest)
        except ValueError:
            raise ValueError("sha256: key must be followed by 64 hex digits") from None
        if len(digest) != 32:
            raise ValueError("sha256: key must be followed by 64 hex digits")
        return digest
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyRing:
    """The configured API keys, matched in constant time by their digests."""

    def __init__(self, api_keys):
        # api_keys: config.api.auth.api_keys (each entry's mud_name filled in by config).
        self._keys = []
        for entry in api_keys:
            digest = key_digest(entry.key)
            self._keys.append(KeyInfo(
                digest.hex()[:8], digest, entry.mud_name, entry.permissions, entry.rate_limit))

    def match(self, presented_key):
        """The KeyInfo of a presented key, or None.

        Every configured digest is compared, whatever matched first, so the
        time taken does not say which key (or how much of one) was right.
        """
        if not isinstance(presented_key, str):
            return None
        presented = hashlib.sha256(presented_key.encode("utf-8", "surrogatepass")).digest()
        found = None
        for info in self._keys:
            if compare_digest(presented, info.digest) and found is None:
                found = info
        return found

    def by_id(self, key_id):
        for info in self._keys:
            if info.key_id == key_id:
                return info
        return None
