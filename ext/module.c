/* The module _intermud3_lpc: encode, decode and Decoder with the
 * signatures of intermud3.lpc_python, plus ABI_VERSION for the check in
 * intermud3.lpc. A top-level module, so an installed build is found both
 * from site-packages and from a source checkout on sys.path. */
#include "lpc.h"

PyObject *lpc_error = NULL;

/* One positional argument, then keyword-only ones by name: `values` holds
 * the defaults and gets what was passed (borrowed). */
static int
parse_arguments(const char *function, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                const char *const *names, PyObject **values, int count)
{
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly one positional argument (%zd given)",
                     function, nargs);
        return -1;
    }
    Py_ssize_t given = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < given; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int j = 0;
        while (j < count && PyUnicode_CompareWithASCIIString(name, names[j]) != 0)
            j++;
        if (j == count) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", function, name);
            return -1;
        }
        values[j] = args[nargs + k];
    }
    return 0;
}

/* An int argument as a Py_ssize_t, clamped (a bound past memory is none). */
static int
as_size(PyObject *value, const char *name, Py_ssize_t *size)
{
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name, Py_TYPE(value)->tp_name);
        return -1;
    }
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0 || number > PY_SSIZE_T_MAX)
        *size = PY_SSIZE_T_MAX;
    else if (overflow < 0 || number < -PY_SSIZE_T_MAX)
        *size = -PY_SSIZE_T_MAX;
    else
        *size = (Py_ssize_t)number;
    return 0;
}

static PyObject *
encode(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"max_depth"};
    PyObject *values[] = {NULL};
    if (parse_arguments("encode", args, nargs, kwnames, names, values, 1) < 0)
        return NULL;
    Py_ssize_t max_depth = LPC_DEFAULT_MAX_DEPTH;
    if (values[0] != NULL && as_size(values[0], "max_depth", &max_depth) < 0)
        return NULL;
    return lpc_encode(args[0], max_depth);
}

static PyObject *
decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"max_depth", "max_length"};
    PyObject *values[] = {NULL, Py_None};
    if (parse_arguments("decode", args, nargs, kwnames, names, values, 2) < 0)
        return NULL;
    Py_ssize_t max_depth = LPC_DEFAULT_MAX_DEPTH, max_length = -1;
    if (values[0] != NULL && as_size(values[0], "max_depth", &max_depth) < 0)
        return NULL;
    PyObject *data = lpc_as_bytes(args[0]);
    if (data == NULL)
        return NULL;
    if (values[1] != Py_None) {
        if (as_size(values[1], "max_length", &max_length) < 0) {
            Py_DECREF(data);
            return NULL;
        }
        if (PyBytes_GET_SIZE(data) > max_length) {
            PyErr_Format(lpc_error, "%zd bytes is over the limit of %zd", PyBytes_GET_SIZE(data),
                         max_length);
            Py_DECREF(data);
            return NULL;
        }
    }
    lpc_parser parser;
    lpc_parser_init(&parser, data, max_depth);
    Py_DECREF(data);
    int result = lpc_parser_run(&parser, PY_SSIZE_T_MAX);
    lpc_parser_clear(&parser);
    if (result < 0)
        return NULL;
    return parser.value; /* a whole-text run ends done or failed */
}

/* ------------------------------------------------------------ Decoder */

typedef struct {
    PyObject_HEAD
    lpc_parser parser;
} Decoder;

static int
decoder_init(Decoder *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"", "max_depth", NULL};
    PyObject *data;
    Py_ssize_t max_depth = LPC_DEFAULT_MAX_DEPTH;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$n:Decoder", names, &data, &max_depth))
        return -1;
    PyObject *text = lpc_as_bytes(data);
    if (text == NULL)
        return -1;
    lpc_parser_clear(&self->parser);
    Py_CLEAR(self->parser.value);
    lpc_parser_init(&self->parser, text, max_depth);
    Py_DECREF(text);
    return 0;
}

static void
decoder_dealloc(Decoder *self)
{
    lpc_parser_clear(&self->parser);
    Py_CLEAR(self->parser.value);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
decoder_step(Decoder *self, PyObject *argument)
{
    Py_ssize_t budget;
    if (as_size(argument, "max_bytes", &budget) < 0)
        return NULL;
    if (budget < 1) {
        PyErr_SetString(PyExc_ValueError, "max_bytes must be at least 1");
        return NULL;
    }
    if (self->parser.data == NULL && !self->parser.done && !self->parser.failed) {
        PyErr_SetString(PyExc_ValueError, "Decoder.__init__ was not called");
        return NULL;
    }
    int result = lpc_parser_run(&self->parser, budget);
    if (result < 0)
        return NULL;
    if (result == 1)
        lpc_parser_clear(&self->parser); /* keep the value, free the text */
    return PyBool_FromLong(result);
}

static PyObject *
decoder_value(Decoder *self, void *closure)
{
    PyObject *value = self->parser.value != NULL ? self->parser.value : Py_None;
    Py_INCREF(value);
    return value;
}

static PyMethodDef decoder_methods[] = {
    {"step", (PyCFunction)decoder_step, METH_O,
     "step(max_bytes) -> bool: read on through about max_bytes more bytes (a token is never "
     "cut); True once the value is complete, in .value. Raises LPCError as decode does."},
    {NULL},
};

static PyGetSetDef decoder_getset[] = {
    {"value", (getter)decoder_value, NULL, "The decoded value once step() returned True, else None.",
     NULL},
    {NULL},
};

PyTypeObject lpc_decoder_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_intermud3_lpc.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_dealloc = (destructor)decoder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decoder(data, *, max_depth=64): decode() in slices, see step().",
    .tp_methods = decoder_methods,
    .tp_getset = decoder_getset,
    .tp_init = (initproc)decoder_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL | METH_KEYWORDS,
     "encode(value, *, max_depth=64) -> bytes: strict FluffOS LPC text."},
    {"decode", (PyCFunction)(void (*)(void))decode, METH_FASTCALL | METH_KEYWORDS,
     "decode(data, *, max_depth=64, max_length=None) -> value: the lenient reader."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_intermud3_lpc",
    .m_doc = "The LPC codec of intermud3.lpc_python in C; use it through intermud3.lpc.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__intermud3_lpc(void)
{
    /* One exception class for both codecs: the reference's. */
    PyObject *reference = PyImport_ImportModule("intermud3.lpc_python");
    if (reference == NULL)
        return NULL;
    PyObject *error = PyObject_GetAttrString(reference, "LPCError");
    Py_DECREF(reference);
    if (error == NULL)
        return NULL;
    if (PyType_Ready(&lpc_decoder_type) < 0) {
        Py_DECREF(error);
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL || PyModule_AddIntConstant(module, "ABI_VERSION", LPC_ABI_VERSION) < 0
        || PyModule_AddObjectRef(module, "LPCError", error) < 0
        || PyModule_AddObjectRef(module, "Decoder", (PyObject *)&lpc_decoder_type) < 0) {
        Py_XDECREF(module);
        Py_DECREF(error);
        return NULL;
    }
    Py_XSETREF(lpc_error, error);
    return module;
}
