"""The JSON-RPC handlers of every I3 method, gathered from the built services."""


def handlers(gateway):
    """Method name -> handler, from the services the gateway has built."""
    table = {}
    for part in (gateway.messages, gateway.channels, gateway.queries,
                 gateway.presence, gateway.network):
        table.update(part.handlers())
    return table
