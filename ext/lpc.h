/* _intermud3_lpc: the LPC codec of intermud3.lpc_python, in C.
 *
 * Same rules, same results: the tests compare the two on random values,
 * bytes and texts. The pure-Python module is the reference; change a rule
 * there first, then here, and bump LPC_ABI_VERSION with
 * intermud3.lpc.C_ABI_VERSION so an older build is no longer picked up.
 */
#ifndef INTERMUD3_LPC_H
#define INTERMUD3_LPC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define LPC_ABI_VERSION 1

/* int() refuses more digits than sys.int_info allows; longer number
 * tokens are malformed. */
#define LPC_MAX_NUMBER_CHARS 4000
#define LPC_DEFAULT_MAX_DEPTH 64

/* intermud3.lpc_python.LPCError, looked up when the module loads. */
extern PyObject *lpc_error;

/* encode.c */
PyObject *lpc_encode(PyObject *value, Py_ssize_t max_depth);

/* decode.c: a parser that can stop between tokens and go on later. */
typedef struct {
    int kind;            /* LPC_TOP, LPC_ARRAY or LPC_MAPPING */
    int state;           /* array: 1 while `held` waits for its comma;
                            mapping: LPC_WANT_KEY ... LPC_HAVE_VALUE */
    PyObject *container; /* the list or dict being filled (owned) */
    PyObject *held;      /* array: the waiting element; mapping: the key */
} lpc_frame;

typedef struct {
    PyObject *data;               /* the bytes being read (owned) */
    const unsigned char *text;    /* its buffer */
    Py_ssize_t length;            /* without the one trailing NUL */
    Py_ssize_t position;          /* next byte to read */
    Py_ssize_t max_depth;
    lpc_frame top;                /* the innermost container */
    lpc_frame *stack;             /* the enclosing ones */
    Py_ssize_t depth, capacity;
    PyObject *value;              /* the result once complete (owned) */
    int done, failed;
    unsigned char *scratch;       /* unescaped string bytes */
    Py_ssize_t scratch_size;
} lpc_parser;

/* Takes a new reference to `data` (exact bytes). */
void lpc_parser_init(lpc_parser *p, PyObject *data, Py_ssize_t max_depth);
/* Reads tokens until the value is complete (1), or until `budget` more
 * bytes are read (0), or an error (-1: LPCError set, the parser cleared). */
int lpc_parser_run(lpc_parser *p, Py_ssize_t budget);
void lpc_parser_clear(lpc_parser *p);
/* `data` as exact bytes (a new reference), or NULL with LPCError set. */
PyObject *lpc_as_bytes(PyObject *data);

extern PyTypeObject lpc_decoder_type;

#endif
