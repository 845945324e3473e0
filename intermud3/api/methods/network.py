"""mudlist and mud_info: their parameters read and handed to
services/network.py (API.md "Queries")."""

from intermud3.api import params as p
from intermud3.api.errors import invalid_params

__all__ = ["handlers"]

MAX_FILTER_TEXT = 128


def handlers(network):
    """{method: handler(call, params)} over the Network service."""

    def mudlist(call, params):
        filters = p.mapping(params, "filter")
        status = _filter_text(filters, "status")
        if status is not None and status not in ("up", "down"):
            raise invalid_params("filter.status", 'filter.status must be "up" or "down"')
        return network.mudlist(
            status=status,
            driver=_filter_text(filters, "driver"),
            has_service=_filter_text(filters, "has_service"),
            name=_filter_text(filters, "name"))

    def mud_info(call, params):
        return network.mud_info(p.text(params, "mud", max_len=MAX_FILTER_TEXT).strip())

    return {"mudlist": mudlist, "mud_info": mud_info}


def _filter_text(filters, key):
    """One filter: a non-empty string, or None when absent or empty."""
    field = f"filter.{key}"
    value = filters.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_params(field, f"{field} must be a string")
    if len(value) > MAX_FILTER_TEXT:
        raise invalid_params(field, f"{field} is longer than {MAX_FILTER_TEXT} characters",
                             max_len=MAX_FILTER_TEXT)
    return value
