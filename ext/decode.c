/* The lenient LPC reader (intermud3.lpc_python.decode) in C.
 *
 * One pass over the bytes, token by token, with the innermost container in
 * `top` and the enclosing ones on an explicit stack (depth never recurses).
 * The parser can stop between tokens after a budget of bytes and go on
 * later, which is what the Decoder type (module.c) offers.
 *
 * Tokens, as the reference's regular expression cuts them: ',' ':' '({'
 * '})' '([' '])', a string (from '"' to the next unescaped '"', or to the
 * end of the text: then unterminated), a number
 * ([-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?), whitespace
 * (space, \t \n \v \f \r) skipped, and any other single byte, refused.
 */
#include "lpc.h"

enum { LPC_TOP, LPC_ARRAY, LPC_MAPPING };
enum { LPC_WANT_KEY, LPC_HAVE_KEY, LPC_WANT_VALUE, LPC_HAVE_VALUE };

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_SPACE(c) ((c) == ' ' || ((c) >= '\t' && (c) <= '\r'))

static int
fail(const char *message)
{
    PyErr_SetString(lpc_error, message);
    return -1;
}

static int
unexpected(unsigned char byte)
{
    PyObject *token = PyBytes_FromStringAndSize((const char *)&byte, 1);
    if (token != NULL) {
        PyErr_Format(lpc_error, "unexpected %R", token);
        Py_DECREF(token);
    }
    return -1;
}

/* ------------------------------------------------------------ strings */

static int
grow_scratch(lpc_parser *p, Py_ssize_t size)
{
    if (size <= p->scratch_size)
        return 0;
    unsigned char *bytes = PyMem_Realloc(p->scratch, size);
    if (bytes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    p->scratch = bytes;
    p->scratch_size = size;
    return 0;
}

static PyObject *
make_text(const unsigned char *bytes, Py_ssize_t length, int ascii)
{
    if (ascii) {
        PyObject *text = PyUnicode_New(length, 127);
        if (text != NULL)
            memcpy(PyUnicode_DATA(text), bytes, length);
        return text;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)bytes, length, NULL);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        /* Encoding is undefined on the wire (CoffeeMud sends Latin-1):
         * fall back for this string alone. */
        PyErr_Clear();
        text = PyUnicode_DecodeLatin1((const char *)bytes, length, NULL);
    }
    return text;
}

/* The string starting at the '"' at `*at`; `*at` moves past it. */
static PyObject *
read_string(lpc_parser *p, Py_ssize_t *at)
{
    const unsigned char *text = p->text;
    Py_ssize_t start = *at + 1, i = start, end = p->length;
    int plain = 1;   /* no escape, no CR: the bytes are the string */
    int ascii = 1;
    for (;;) {
        if (i >= end) {
            PyErr_SetString(lpc_error, "unterminated string");
            return NULL;
        }
        unsigned char c = text[i];
        if (c == '"')
            break;
        if (c == '\\') {
            if (i + 1 >= end) {
                PyErr_SetString(lpc_error, "unterminated string");
                return NULL;
            }
            plain = 0;
            ascii &= text[i + 1] < 0x80;
            i += 2;
            continue;
        }
        if (c == '\r')
            plain = 0;
        ascii &= c < 0x80;
        i++;
    }
    *at = i + 1;
    if (plain)
        return make_text(text + start, i - start, ascii);
    /* \X reads as X for any X; then CRLF and CR read as LF (FluffOS
     * writes a newline as a raw CR), an escaped CR too. */
    if (grow_scratch(p, i - start) < 0)
        return NULL;
    unsigned char *out = p->scratch;
    int after_cr = 0;
    for (Py_ssize_t j = start; j < i; j++) {
        unsigned char c = text[j];
        if (c == '\\')
            c = text[++j];
        if (c == '\r') {
            *out++ = '\n';
            after_cr = 1;
            continue;
        }
        if (!(c == '\n' && after_cr))
            *out++ = c;
        after_cr = 0;
    }
    return make_text(p->scratch, out - p->scratch, ascii);
}

/* ------------------------------------------------------------ numbers */

/* The number token at `*at`, or NULL with no error set when the bytes
 * there are no number (a lone sign or dot, refused by the caller). */
static PyObject *
read_number(lpc_parser *p, Py_ssize_t *at)
{
    const unsigned char *text = p->text;
    Py_ssize_t start = *at, i = start, end = p->length;
    int is_float = 0;
    if (text[i] == '-' || text[i] == '+')
        i++;
    if (i < end && IS_DIGIT(text[i])) {
        while (i < end && IS_DIGIT(text[i]))
            i++;
        if (i < end && text[i] == '.') {
            is_float = 1;
            i++;
            while (i < end && IS_DIGIT(text[i]))
                i++;
        }
    }
    else if (i + 1 < end && text[i] == '.' && IS_DIGIT(text[i + 1])) {
        is_float = 1;
        i++;
        while (i < end && IS_DIGIT(text[i]))
            i++;
    }
    else {
        return NULL;
    }
    if (i < end && (text[i] == 'e' || text[i] == 'E')) {
        Py_ssize_t j = i + 1;
        if (j < end && (text[j] == '-' || text[j] == '+'))
            j++;
        if (j < end && IS_DIGIT(text[j])) {
            while (j < end && IS_DIGIT(text[j]))
                j++;
            is_float = 1;
            i = j;
        }
    }
    Py_ssize_t length = i - start;
    *at = i;
    if (length > LPC_MAX_NUMBER_CHARS) {
        PyErr_Format(lpc_error, "number of %zd characters is too long", length);
        return NULL;
    }
    const unsigned char *digits = text + start;
    if (!is_float) {
        /* Up to 18 digits fit a long long; longer ones go to Python. */
        Py_ssize_t k = 0;
        int negative = 0;
        if (digits[0] == '-' || digits[0] == '+') {
            negative = digits[0] == '-';
            k = 1;
        }
        if (length - k <= 18) {
            long long number = 0;
            for (; k < length; k++)
                number = number * 10 + (digits[k] - '0');
            return PyLong_FromLongLong(negative ? -number : number);
        }
    }
    char copy[LPC_MAX_NUMBER_CHARS + 1];
    memcpy(copy, digits, length);
    copy[length] = '\0';
    char *stop = NULL;
    if (!is_float)
        return PyLong_FromString(copy, &stop, 10);
    /* As float(): out of range reads as an infinity, below as 0.0. */
    double number = PyOS_string_to_double(copy, &stop, NULL);
    if (number == -1.0 && PyErr_Occurred())
        return NULL;
    if (stop != copy + length) {
        PyErr_Format(PyExc_ValueError, "could not convert %s to float", copy);
        return NULL;
    }
    return PyFloat_FromDouble(number);
}

/* ------------------------------------------------------------ keys */

/* LPC allows an array (or mapping) as a mapping key; Python needs a
 * hashable stand-in, so arrays become tuples, all the way down. */
static PyObject *
hashable(PyObject *value)
{
    int is_list = PyList_CheckExact(value);
    if (!is_list && !PyDict_CheckExact(value)) {
        Py_INCREF(value);
        return value;
    }
    if (Py_EnterRecursiveCall(" while reading an LPC mapping key"))
        return NULL;
    PyObject *result = NULL;
    if (is_list) {
        Py_ssize_t size = PyList_GET_SIZE(value);
        result = PyTuple_New(size);
        for (Py_ssize_t i = 0; result != NULL && i < size; i++) {
            PyObject *item = hashable(PyList_GET_ITEM(value, i));
            if (item == NULL)
                Py_CLEAR(result);
            else
                PyTuple_SET_ITEM(result, i, item);
        }
    }
    else {
        result = PyTuple_New(PyDict_GET_SIZE(value));
        Py_ssize_t at = 0, i = 0;
        PyObject *key, *item;
        while (result != NULL && PyDict_Next(value, &at, &key, &item)) {
            PyObject *kept = hashable(item);
            PyObject *pair = kept == NULL ? NULL : PyTuple_Pack(2, key, kept);
            Py_XDECREF(kept);
            if (pair == NULL)
                Py_CLEAR(result);
            else
                PyTuple_SET_ITEM(result, i++, pair);
        }
    }
    Py_LeaveRecursiveCall();
    return result;
}

/* ------------------------------------------------------------ parser */

void
lpc_parser_init(lpc_parser *p, PyObject *data, Py_ssize_t max_depth)
{
    memset(p, 0, sizeof *p);
    Py_INCREF(data);
    p->data = data;
    p->text = (const unsigned char *)PyBytes_AS_STRING(data);
    p->length = PyBytes_GET_SIZE(data);
    if (p->length > 0 && p->text[p->length - 1] == '\0')
        p->length--; /* the frame's NUL */
    p->max_depth = max_depth;
    p->top.kind = LPC_TOP;
}

static void
clear_frame(lpc_frame *frame)
{
    Py_CLEAR(frame->container);
    Py_CLEAR(frame->held);
}

void
lpc_parser_clear(lpc_parser *p)
{
    clear_frame(&p->top);
    for (Py_ssize_t i = 0; i < p->depth; i++)
        clear_frame(&p->stack[i]);
    p->depth = 0;
    PyMem_Free(p->stack);
    p->stack = NULL;
    p->capacity = 0;
    PyMem_Free(p->scratch);
    p->scratch = NULL;
    p->scratch_size = 0;
    Py_CLEAR(p->data);
}

static int
open_container(lpc_parser *p, int kind)
{
    if (p->depth >= p->max_depth) {
        PyErr_Format(lpc_error, "nesting deeper than %zd", p->max_depth);
        return -1;
    }
    PyObject *container = kind == LPC_ARRAY ? PyList_New(0) : PyDict_New();
    if (container == NULL)
        return -1;
    if (p->depth == p->capacity) {
        Py_ssize_t capacity = p->capacity ? p->capacity * 2 : 16;
        lpc_frame *stack = PyMem_Realloc(p->stack, capacity * sizeof *stack);
        if (stack == NULL) {
            Py_DECREF(container);
            PyErr_NoMemory();
            return -1;
        }
        p->stack = stack;
        p->capacity = capacity;
    }
    p->stack[p->depth++] = p->top;
    p->top.kind = kind;
    p->top.state = kind == LPC_ARRAY ? 0 : LPC_WANT_KEY;
    p->top.container = container;
    p->top.held = NULL;
    return 0;
}

/* Ends the mapping pair being read at ',' or '])'. An empty pair is
 * skipped; a key with ':' but no value reads as 0, like an empty array
 * slot; a key with no ':' is an error. */
static int
end_pair(lpc_frame *top)
{
    if (top->state == LPC_WANT_VALUE) {
        PyObject *zero = PyLong_FromLong(0);
        if (zero == NULL)
            return -1;
        int result = PyDict_SetItem(top->container, top->held, zero);
        Py_DECREF(zero);
        if (result < 0)
            return -1;
    }
    else if (top->state == LPC_HAVE_KEY) {
        return fail("mapping key without ':'");
    }
    top->state = LPC_WANT_KEY;
    Py_CLEAR(top->held);
    return 0;
}

static int
comma(lpc_frame *top)
{
    if (top->kind == LPC_ARRAY) {
        /* An empty slot, as in ({1,,2,}) or ({,}), reads as 0. */
        PyObject *item = top->state ? top->held : PyLong_FromLong(0);
        top->held = NULL;
        top->state = 0;
        if (item == NULL)
            return -1;
        int result = PyList_Append(top->container, item);
        Py_DECREF(item);
        return result;
    }
    if (top->kind == LPC_MAPPING)
        return end_pair(top);
    return fail("',' outside any container");
}

/* Closes the innermost container; the new reference to it goes to *value. */
static int
close_container(lpc_parser *p, int kind, PyObject **value)
{
    lpc_frame *top = &p->top;
    if (top->kind != kind)
        return fail(kind == LPC_ARRAY ? "unbalanced '})'" : "unbalanced '])'");
    if (kind == LPC_ARRAY) {
        if (top->state) { /* the trailing comma is optional */
            int result = PyList_Append(top->container, top->held);
            Py_CLEAR(top->held);
            if (result < 0)
                return -1;
        }
    }
    else if (end_pair(top) < 0) {
        return -1;
    }
    *value = top->container;
    top->container = NULL;
    Py_CLEAR(top->held);
    p->top = p->stack[--p->depth];
    return 0;
}

/* Hands a complete value (a reference the callee takes) to the innermost
 * container; 1 when it is the whole text's value. */
static int
take_value(lpc_parser *p, PyObject *value)
{
    lpc_frame *top = &p->top;
    if (top->kind == LPC_ARRAY) {
        if (top->state) {
            Py_DECREF(value);
            return fail("missing ',' between array elements");
        }
        top->state = 1;
        top->held = value;
        return 0;
    }
    if (top->kind == LPC_MAPPING) {
        if (top->state == LPC_WANT_VALUE) {
            int result = PyDict_SetItem(top->container, top->held, value);
            Py_DECREF(value);
            top->state = LPC_HAVE_VALUE;
            return result;
        }
        if (top->state == LPC_WANT_KEY) {
            PyObject *key = hashable(value);
            Py_DECREF(value);
            if (key == NULL)
                return -1;
            Py_XSETREF(top->held, key);
            top->state = LPC_HAVE_KEY;
            return 0;
        }
        Py_DECREF(value);
        return fail("missing ',' or ':' in mapping");
    }
    p->value = value; /* bytes after the top-level value are ignored */
    p->done = 1;
    return 1;
}

static int
read_token(lpc_parser *p, Py_ssize_t *at)
{
    const unsigned char *text = p->text;
    Py_ssize_t i = *at;
    unsigned char c = text[i];
    unsigned char next = i + 1 < p->length ? text[i + 1] : 0;
    PyObject *value = NULL;
    switch (c) {
    case ',':
        *at = i + 1;
        return comma(&p->top);
    case ':':
        *at = i + 1;
        if (p->top.kind != LPC_MAPPING || p->top.state != LPC_HAVE_KEY)
            return fail("unexpected ':'");
        p->top.state = LPC_WANT_VALUE;
        return 0;
    case '"':
        value = read_string(p, at);
        if (value == NULL)
            return -1;
        return take_value(p, value);
    case '(':
        if (next != '{' && next != '[')
            return unexpected(c);
        *at = i + 2;
        return open_container(p, next == '{' ? LPC_ARRAY : LPC_MAPPING);
    case '}':
    case ']':
        if (next != ')')
            return unexpected(c);
        *at = i + 2;
        if (close_container(p, c == '}' ? LPC_ARRAY : LPC_MAPPING, &value) < 0)
            return -1;
        return take_value(p, value);
    default:
        if (IS_DIGIT(c) || c == '-' || c == '+' || c == '.') {
            value = read_number(p, at);
            if (value != NULL)
                return take_value(p, value);
            if (PyErr_Occurred())
                return -1;
        }
        return unexpected(c);
    }
}

/* A failure that is not an LPCError (no memory, a recursion limit, a
 * digit limit) is still reported as one, the original as its cause. */
static void
as_lpc_error(void)
{
    if (PyErr_ExceptionMatches(lpc_error))
        return;
    if (!PyErr_ExceptionMatches(PyExc_RecursionError) && !PyErr_ExceptionMatches(PyExc_MemoryError)
        && !PyErr_ExceptionMatches(PyExc_ValueError) && !PyErr_ExceptionMatches(PyExc_TypeError)
        && !PyErr_ExceptionMatches(PyExc_IndexError))
        return;
    PyObject *type, *cause, *traceback;
    PyErr_Fetch(&type, &cause, &traceback);
    PyErr_NormalizeException(&type, &cause, &traceback);
    if (traceback != NULL)
        PyException_SetTraceback(cause, traceback);
    PyErr_Format(lpc_error, "unreadable LPC text: %S", cause);
    PyObject *type2, *error, *traceback2;
    PyErr_Fetch(&type2, &error, &traceback2);
    PyErr_NormalizeException(&type2, &error, &traceback2);
    PyException_SetCause(error, cause); /* steals cause */
    Py_INCREF(cause);
    PyException_SetContext(error, cause);
    PyErr_Restore(type2, error, traceback2);
    Py_DECREF(type);
    Py_XDECREF(traceback);
}

int
lpc_parser_run(lpc_parser *p, Py_ssize_t budget)
{
    if (p->done)
        return 1;
    if (p->failed)
        return fail("this decoder already failed");
    const unsigned char *text = p->text;
    Py_ssize_t at = p->position, end = p->length;
    Py_ssize_t stop = budget < end - at ? at + budget : end;
    int result = 0;
    for (;;) {
        while (at < end && IS_SPACE(text[at]))
            at++;
        if (at >= end) {
            result = fail("LPC text ended before the value was complete");
            break;
        }
        if (at >= stop)
            break;
        result = read_token(p, &at);
        if (result != 0)
            break;
    }
    p->position = at;
    if (result < 0) {
        as_lpc_error();
        p->failed = 1;
        lpc_parser_clear(p);
    }
    return result;
}

PyObject *
lpc_as_bytes(PyObject *data)
{
    if (PyBytes_Check(data)) {
        Py_INCREF(data);
        return data;
    }
    if (PyByteArray_Check(data) || PyMemoryView_Check(data))
        return PyBytes_FromObject(data); /* a copy, as bytes(data) */
    PyObject *name = PyType_GetName(Py_TYPE(data));
    if (name != NULL) {
        PyErr_Format(lpc_error, "cannot decode %U; bytes expected", name);
        Py_DECREF(name);
    }
    return NULL;
}
