"""The in-repo router's mudlist: every MUD it knows, under ids that grow
with each change, and the ``mudlist`` broadcasts that announce changes."""

__all__ = ["RouterMudlist"]


class RouterMudlist:
    """``muds``: name -> 13-field info; ``mudlist_id``: the latest id.
    ``connections`` (name -> connection) is the router's; ``changed()``
    runs after each broadcast."""

    def __init__(self, connections, out, changed):
        self._connections = connections
        self._out = out
        self._changed = changed
        self.muds = {}
        self.mudlist_id = 0
        self._changed_at = {}       # name -> mudlist id of its last change

    def started(self, name, info):
        """A MUD's startup put ``info`` in the list, under a new id that
        is announced later (``announce``)."""
        self.muds[name] = info
        self.mudlist_id += 1
        self._changed_at[name] = self.mudlist_id

    def changes_since(self, old_id):
        """(name, info) of every MUD changed after mudlist id ``old_id``."""
        return [(name, info) for name, info in self.muds.items()
                if self._changed_at.get(name, 0) > old_id]

    def mark(self, name, state):
        """A MUD's state field changed (0 down, -1 up, or a restart delay)."""
        self.muds[name][0] = state
        self.announce({name: self.muds[name]})

    def announce(self, delta):
        """A mudlist change under a new id, to every connected MUD."""
        self.mudlist_id += 1
        for name in delta:
            self._changed_at[name] = self.mudlist_id
        for name, conn in list(self._connections.items()):
            self._out.write(conn, self._out.packet("mudlist", name, 0, self.mudlist_id, delta))
        self._changed()
