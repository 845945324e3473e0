/* The strict LPC writer (intermud3.lpc_python.encode) in C.
 *
 * Writes UTF-8 straight into one growing buffer: no whitespace, a comma
 * after every element and pair, strings with CR/CRLF as LF, every control
 * character but LF dropped, '"' and '\' escaped, lone surrogates as '?'.
 */
#include "lpc.h"

#include <math.h>

typedef struct {
    char *bytes;
    Py_ssize_t used, size;
    char inline_bytes[1024]; /* most packets fit; no malloc for them */
} out_buffer;

static int
reserve(out_buffer *out, Py_ssize_t more)
{
    if (more <= out->size - out->used)
        return 0;
    if (more > PY_SSIZE_T_MAX / 2 - out->used) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t size = out->size * 2;
    if (size < out->used + more)
        size = out->used + more;
    char *bytes;
    if (out->bytes == out->inline_bytes) {
        bytes = PyMem_Malloc(size);
        if (bytes != NULL)
            memcpy(bytes, out->bytes, out->used);
    }
    else {
        bytes = PyMem_Realloc(out->bytes, size);
    }
    if (bytes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->bytes = bytes;
    out->size = size;
    return 0;
}

static int
put(out_buffer *out, const char *text, Py_ssize_t length)
{
    if (reserve(out, length) < 0)
        return -1;
    memcpy(out->bytes + out->used, text, length);
    out->used += length;
    return 0;
}

#define PUT_LITERAL(out, text) put((out), (text), sizeof(text) - 1)

/* Control characters (C0 but LF, DEL, C1) never reach the wire. */
#define DROPPED(c) ((c) < 0x20 || ((c) >= 0x7F && (c) < 0xA0))

static int
write_string(out_buffer *out, PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    /* Worst case per character: 2 bytes for an escape, else its UTF-8. */
    int widest = PyUnicode_IS_ASCII(text) ? 2 : kind == PyUnicode_1BYTE_KIND ? 2
                 : kind == PyUnicode_2BYTE_KIND ? 3 : 4;
    if (length > (PY_SSIZE_T_MAX - 2) / widest) {
        PyErr_NoMemory();
        return -1;
    }
    if (reserve(out, length * widest + 2) < 0)
        return -1;
    unsigned char *at = (unsigned char *)out->bytes + out->used;
    *at++ = '"';
    int after_cr = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\r') {
            /* CR is a newline on the wire; CRLF is one newline. */
            *at++ = '\n';
            after_cr = 1;
            continue;
        }
        if (c == '\n') {
            if (!after_cr)
                *at++ = '\n';
            after_cr = 0;
            continue;
        }
        after_cr = 0;
        if (c < 0x80) {
            if (DROPPED(c))
                continue;
            if (c == '"' || c == '\\')
                *at++ = '\\';
            *at++ = (unsigned char)c;
        }
        else if (c < 0x800) {
            if (DROPPED(c))
                continue;
            *at++ = (unsigned char)(0xC0 | (c >> 6));
            *at++ = (unsigned char)(0x80 | (c & 0x3F));
        }
        else if (c >= 0xD800 && c <= 0xDFFF) {
            *at++ = '?'; /* a lone surrogate has no UTF-8 form */
        }
        else if (c < 0x10000) {
            *at++ = (unsigned char)(0xE0 | (c >> 12));
            *at++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *at++ = (unsigned char)(0x80 | (c & 0x3F));
        }
        else {
            *at++ = (unsigned char)(0xF0 | (c >> 18));
            *at++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            *at++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *at++ = (unsigned char)(0x80 | (c & 0x3F));
        }
    }
    *at++ = '"';
    out->used = (char *)at - out->bytes;
    return 0;
}

static int
write_int(out_buffer *out, PyObject *value)
{
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred())
        return -1;
    /* CoffeeMud reads 32-bit ints only. */
    if (overflow) {
        /* Past 64 bits the digits may be too many even to print. */
        PyObject *bits = PyObject_CallMethod(value, "bit_length", NULL);
        if (bits != NULL) {
            PyErr_Format(lpc_error, "int of %S bits is outside signed 32 bits", bits);
            Py_DECREF(bits);
        }
        return -1;
    }
    if (number < -2147483648LL || number > 2147483647LL) {
        PyErr_Format(lpc_error, "int %lld is outside signed 32 bits", number);
        return -1;
    }
    char digits[16];
    int length = snprintf(digits, sizeof digits, "%lld", number);
    return put(out, digits, length);
}

static int
write_float(out_buffer *out, PyObject *value)
{
    double number = PyFloat_AS_DOUBLE(value);
    if (!isfinite(number)) {
        PyErr_Format(lpc_error, "float %R has no LPC form", value);
        return -1;
    }
    /* What Python's "%f" % number writes. */
    char *text = PyOS_double_to_string(number, 'f', 6, 0, NULL);
    if (text == NULL)
        return -1;
    int result = put(out, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return result;
}

static int write_value(out_buffer *out, PyObject *value, Py_ssize_t depth);

static int
too_deep(void)
{
    PyErr_SetString(lpc_error, "value nested too deeply to encode");
    return -1;
}

static int
write_element(out_buffer *out, PyObject *item, Py_ssize_t depth)
{
    /* Held while written: a subclass's code could drop the last reference. */
    Py_INCREF(item);
    int result = write_value(out, item, depth);
    Py_DECREF(item);
    if (result < 0)
        return -1;
    return PUT_LITERAL(out, ",");
}

static int
write_array(out_buffer *out, PyObject *value, Py_ssize_t depth)
{
    if (PUT_LITERAL(out, "({") < 0)
        return -1;
    if (PyList_CheckExact(value)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++)
            if (write_element(out, PyList_GET_ITEM(value, i), depth) < 0)
                return -1;
    }
    else if (PyTuple_CheckExact(value)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(value); i++)
            if (write_element(out, PyTuple_GET_ITEM(value, i), depth) < 0)
                return -1;
    }
    else {
        /* A subclass is written as Python's `for item in value` sees it. */
        PyObject *items = PyObject_GetIter(value);
        if (items == NULL)
            return -1;
        PyObject *item;
        while ((item = PyIter_Next(items)) != NULL) {
            int result = write_element(out, item, depth);
            Py_DECREF(item);
            if (result < 0) {
                Py_DECREF(items);
                return -1;
            }
        }
        Py_DECREF(items);
        if (PyErr_Occurred())
            return -1;
    }
    return PUT_LITERAL(out, "})");
}

static int
write_pair(out_buffer *out, PyObject *key, PyObject *item, Py_ssize_t depth)
{
    Py_INCREF(key);
    Py_INCREF(item);
    int result = write_value(out, key, depth);
    if (result == 0)
        result = PUT_LITERAL(out, ":");
    if (result == 0)
        result = write_value(out, item, depth);
    if (result == 0)
        result = PUT_LITERAL(out, ",");
    Py_DECREF(key);
    Py_DECREF(item);
    return result;
}

static int
write_mapping(out_buffer *out, PyObject *value, Py_ssize_t depth)
{
    if (PUT_LITERAL(out, "([") < 0)
        return -1;
    if (PyDict_CheckExact(value)) {
        Py_ssize_t at = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &at, &key, &item))
            if (write_pair(out, key, item, depth) < 0)
                return -1;
    }
    else {
        /* A subclass (an OrderedDict) in the order its items() gives. */
        PyObject *pairs = PyObject_CallMethod(value, "items", NULL);
        if (pairs == NULL)
            return -1;
        PyObject *iterator = PyObject_GetIter(pairs);
        Py_DECREF(pairs);
        if (iterator == NULL)
            return -1;
        PyObject *pair;
        while ((pair = PyIter_Next(iterator)) != NULL) {
            PyObject *both = PySequence_Tuple(pair);
            Py_DECREF(pair);
            int result = -1;
            if (both != NULL && PyTuple_GET_SIZE(both) != 2)
                PyErr_SetString(PyExc_ValueError, "items() gave a pair that is not two values");
            else if (both != NULL)
                result = write_pair(out, PyTuple_GET_ITEM(both, 0), PyTuple_GET_ITEM(both, 1), depth);
            Py_XDECREF(both);
            if (result < 0) {
                Py_DECREF(iterator);
                return -1;
            }
        }
        Py_DECREF(iterator);
        if (PyErr_Occurred())
            return -1;
    }
    return PUT_LITERAL(out, "])");
}

static int
write_container(out_buffer *out, PyObject *value, Py_ssize_t depth, int is_array)
{
    if (depth <= 0)
        return too_deep();
    /* max_depth bounds the nesting; this bounds the C stack whatever it is. */
    if (Py_EnterRecursiveCall(" while encoding LPC"))
        return -1;
    int result = is_array ? write_array(out, value, depth - 1) : write_mapping(out, value, depth - 1);
    Py_LeaveRecursiveCall();
    return result;
}

static int
write_value(out_buffer *out, PyObject *value, Py_ssize_t depth)
{
    /* In the reference's order: None and bools before int (bool is one). */
    if (value == Py_None || value == Py_False)
        return PUT_LITERAL(out, "0");
    if (value == Py_True)
        return PUT_LITERAL(out, "1");
    if (PyUnicode_Check(value))
        return write_string(out, value);
    if (PyLong_Check(value))
        return write_int(out, value);
    if (PyFloat_Check(value))
        return write_float(out, value);
    if (PyList_Check(value) || PyTuple_Check(value))
        return write_container(out, value, depth, 1);
    if (PyDict_Check(value))
        return write_container(out, value, depth, 0);
    PyObject *name = PyType_GetName(Py_TYPE(value));
    if (name != NULL) {
        PyErr_Format(lpc_error, "cannot encode %U as LPC", name);
        Py_DECREF(name);
    }
    return -1;
}

PyObject *
lpc_encode(PyObject *value, Py_ssize_t max_depth)
{
    out_buffer out;
    out.bytes = out.inline_bytes;
    out.used = 0;
    out.size = sizeof out.inline_bytes;
    PyObject *result = NULL;
    if (write_value(&out, value, max_depth) == 0)
        result = PyBytes_FromStringAndSize(out.bytes, out.used);
    if (out.bytes != out.inline_bytes)
        PyMem_Free(out.bytes);
    return result;
}
