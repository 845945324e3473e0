"""The colour options of an API session and where the API applies them.

``colour_out`` and ``colour_in`` are given in ``authenticate`` or
``set_options``. ``wrap(handlers)`` puts the translation around the method
handlers whose parameters or results carry text, so the handlers
themselves only ever see and return Pinkfish.
"""

from twisted.internet import defer

from intermud3 import colour
from intermud3.api.errors import invalid_params
from intermud3.colour import fields

OPTIONS = {"colour_out": colour.OUT_FORMS, "colour_in": colour.IN_DIALECTS}


def read_options(params):
    """The colour options given in ``params``: {name: value}; -32602 for
    a value that is not one of the allowed ones."""
    given = {}
    for name, allowed in OPTIONS.items():
        value = params.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or value not in allowed:
            raise invalid_params(name, f"{name} must be one of: {', '.join(allowed)}",
                                 allowed=list(allowed))
        given[name] = value
    return given


def apply_options(session, options):
    for name, value in options.items():
        setattr(session, name, value)


def current(session):
    return {name: getattr(session, name) for name in OPTIONS}


def set_options(call, params):
    """``set_options {colour_out?, colour_in?}``: change this session's
    options; the answer holds them all (call it with none to read them)."""
    apply_options(call.session, read_options(params))
    return {"status": "success", **current(call.session)}


def has_text(event):
    """Whether ``event`` carries text rendered per colour form."""
    return event in fields.EVENTS


def render_event(event, params, form):
    """``params`` of ``event`` with its remote text in ``form`` (None: as is)."""
    paths = fields.EVENTS.get(event)
    if paths is None or form is None or form == colour.DEFAULT:
        return params
    return fields.translate(params, paths, lambda text: colour.render(text, form))


def wrap(handlers):
    """{method: handler} with colour_in applied to the parameters and
    colour_out to the results of the methods that carry text."""
    wrapped = dict(handlers)
    for method, handler in handlers.items():
        params_in = fields.PARAMS.get(method)
        result_out = fields.RESULTS.get(method)
        if params_in or result_out:
            wrapped[method] = _wrapped(handler, params_in, result_out)
    return wrapped


def _wrapped(handler, params_in, result_out):
    def coloured(call, params):
        dialect = call.session.colour_in
        if params_in and dialect != colour.DEFAULT:
            params = fields.translate(params, params_in, lambda text: colour.to_pinkfish(text, dialect))
        result = handler(call, params)
        if not result_out:
            return result

        def render(value):
            # The form the session holds when the answer comes.
            form = call.session.colour_out
            if form == colour.DEFAULT:
                return value
            return fields.translate(value, result_out, lambda text: colour.render(text, form))
        if isinstance(result, defer.Deferred) or hasattr(result, "__await__"):
            return defer.ensureDeferred(result).addCallback(render)
        return render(result)
    return coloured
