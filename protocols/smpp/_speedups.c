/*
 * Optional C accelerator of the submit_sm / deliver_sm codec (SMPP 3.4 sections 4.4.1 and 4.6.1,
 * field types 3.1, optional parameters 3.2.1.6).
 *
 * protocols/smpp/pdu.py stays the reference and the only place that reports faults: each function
 * here either returns the result of the plain valid case or returns None, and the caller then runs
 * the pure-Python code, which produces the same result or raises the exact DecodeError /
 * LocalProtocolError.  So this file never has to name a fault or pick a command_status, and any
 * doubt (odd types, subclasses, limits) is settled by returning None.
 *
 * Byte layout of the body (after the 16-octet header):
 *   service_type\0 ton npi source_addr\0 ton npi destination_addr\0 esm_class protocol_id
 *   priority_flag schedule_delivery_time\0 validity_period\0 registered_delivery
 *   replace_if_present_flag data_coding sm_default_msg_id sm_length short_message TLV*
 *
 * The module keeps no global state: the two attribute names it looks up live in the module state
 * (PEP 489 multi-phase init), everything else is passed in by the caller.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define HEADER_LENGTH 16
#define SM_MAX 254      /* sm_length is one octet; 255 is reserved for message_payload users */
#define TLV_MAX 0xFFFF  /* a TLV length is two octets */

/* maximum octets of each C-Octet string, NUL included (section 4.4.1) */
#define SERVICE_TYPE_MAX 6
#define ADDR_MAX 21
#define TIME_MAX 17

typedef struct {
    PyObject *str_tag;
    PyObject *str_value;
} speedups_state;

static inline speedups_state *
get_state(PyObject *module)
{
    return (speedups_state *)PyModule_GetState(module);
}

/* METH_FASTCALL leaves the argument count to the function */
static int
check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs == expected) {
        return 1;
    }
    PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments but %zd were given", name,
                 expected, nargs);
    return 0;
}

/* --- decode ------------------------------------------------------------------------------------- */

/* Offset of the NUL ending a C-Octet string at `pos` that may take at most `max` octets, or -1.
 * Bounded by the PDU end, so a string running off the end is simply "not found". */
static Py_ssize_t
cstr_end(const unsigned char *p, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t max)
{
    if (pos >= n) {
        return -1;
    }
    Py_ssize_t avail = n - pos < max ? n - pos : max;
    const unsigned char *nul = memchr(p + pos, 0, (size_t)avail);
    return nul == NULL ? -1 : nul - p;
}

/* Whether a standard TLV's value length is within its (kind, min, max) entry of tlv.py's table.
 * An entry of another shape answers no, leaving the case to the Python path.  Only exact ints are
 * read, so no Python code (__index__) runs while `spec` is a borrowed reference. */
static int
length_allowed(PyObject *spec, Py_ssize_t length)
{
    if (!PyTuple_CheckExact(spec) || PyTuple_GET_SIZE(spec) != 3) {
        return 0;
    }
    PyObject *lo_obj = PyTuple_GET_ITEM(spec, 1), *hi_obj = PyTuple_GET_ITEM(spec, 2);
    if (!PyLong_CheckExact(lo_obj) || !PyLong_CheckExact(hi_obj)) {
        return 0;
    }
    long lo = PyLong_AsLong(lo_obj);
    long hi = PyLong_AsLong(hi_obj);
    if (PyErr_Occurred()) { /* out of range of a C long: not a real table entry */
        PyErr_Clear();
        return 0;
    }
    return lo <= length && length <= hi;
}

/* Decode the TLV stream p[pos:n] into a tuple of Tlv built by `make_tlv(tag, value)`.
 * Returns a new reference, Py_None (new reference) when the stream is not plainly valid, or NULL
 * with an exception set.  `kinds` maps standard tags to (kind, min length, max length), the table
 * tlv.py checks lengths against; unknown tags take any length. */
static PyObject *
decode_tlvs(const unsigned char *p, Py_ssize_t pos, Py_ssize_t n, PyObject *kinds, PyObject *make_tlv)
{
    /* count first so the tuple is allocated once; this pass also checks the framing */
    Py_ssize_t count = 0;
    for (Py_ssize_t q = pos; q < n; count++) {
        if (n - q < 4) {
            Py_RETURN_NONE;
        }
        Py_ssize_t length = (p[q + 2] << 8) | p[q + 3];
        q += 4 + length;
        if (q > n) {
            Py_RETURN_NONE;
        }
    }
    PyObject *out = PyTuple_New(count);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        long tag = (p[pos] << 8) | p[pos + 1];
        Py_ssize_t length = (p[pos + 2] << 8) | p[pos + 3];
        PyObject *args[2];
        args[0] = PyLong_FromLong(tag);
        if (args[0] == NULL) {
            goto error;
        }
        PyObject *spec = PyDict_GetItemWithError(kinds, args[0]); /* borrowed */
        if (spec == NULL && PyErr_Occurred()) {
            Py_DECREF(args[0]);
            goto error;
        }
        if (spec != NULL && !length_allowed(spec, length)) {
            Py_DECREF(args[0]);
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        args[1] = PyBytes_FromStringAndSize((const char *)p + pos + 4, length);
        if (args[1] == NULL) {
            Py_DECREF(args[0]);
            goto error;
        }
        PyObject *tlv = PyObject_Vectorcall(make_tlv, args, 2, NULL);
        Py_DECREF(args[0]);
        Py_DECREF(args[1]);
        if (tlv == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(out, i, tlv); /* steals */
        pos += 4 + length;
    }
    return out;

error:
    Py_DECREF(out);
    return NULL;
}

/* Store `value` (a new reference, may be NULL after a failed allocation) at `i` of `out`. */
#define SET(i, value)                          \
    do {                                       \
        PyObject *v_ = (value);                \
        if (v_ == NULL) {                      \
            Py_DECREF(out);                    \
            return NULL;                       \
        }                                      \
        PyTuple_SET_ITEM(out, (i), v_);        \
    } while (0)

#define LATIN1(start, end) PyUnicode_DecodeLatin1((const char *)p + (start), (end) - (start), NULL)
#define OCTET(at) PyLong_FromLong(p[(at)])

PyDoc_STRVAR(decode_sm_doc,
"decode_sm(pdu, tlv_kinds, make_tlv, /)\n--\n\n"
"The 18 body values of a whole submit_sm / deliver_sm PDU (body at offset 16), in field order,\n"
"the last one the tuple of optional parameters; or None if the PDU is not plainly valid.");

static PyObject *
decode_sm(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module; /* needs no module state */
    if (!check_nargs("decode_sm", nargs, 3)) {
        return NULL;
    }
    PyObject *pdu = args[0], *kinds = args[1], *make_tlv = args[2];
    /* bytearray or memoryview input keeps its own slicing semantics: the Python path handles it */
    if (!PyBytes_CheckExact(pdu) || !PyDict_CheckExact(kinds)) {
        Py_RETURN_NONE;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(pdu);
    Py_ssize_t n = PyBytes_GET_SIZE(pdu);

    /* find the five terminators; the octets between them sit at fixed offsets */
    Py_ssize_t e0 = cstr_end(p, n, HEADER_LENGTH, SERVICE_TYPE_MAX);
    Py_ssize_t e1 = e0 < 0 ? -1 : cstr_end(p, n, e0 + 3, ADDR_MAX);
    Py_ssize_t e2 = e1 < 0 ? -1 : cstr_end(p, n, e1 + 3, ADDR_MAX);
    Py_ssize_t e3 = e2 < 0 ? -1 : cstr_end(p, n, e2 + 4, TIME_MAX);
    Py_ssize_t e4 = e3 < 0 ? -1 : cstr_end(p, n, e3 + 1, TIME_MAX);
    if (e4 < 0 || e4 + 6 > n) {
        Py_RETURN_NONE;
    }
    Py_ssize_t sm_end = e4 + 6 + p[e4 + 5];
    if (sm_end > n) {
        Py_RETURN_NONE;
    }

    PyObject *tlvs;
    if (sm_end < n) {
        tlvs = decode_tlvs(p, sm_end, n, kinds, make_tlv);
        if (tlvs == NULL || tlvs == Py_None) {
            return tlvs;
        }
    }
    else {
        tlvs = PyTuple_New(0);
        if (tlvs == NULL) {
            return NULL;
        }
    }

    PyObject *out = PyTuple_New(18);
    if (out == NULL) {
        Py_DECREF(tlvs);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 17, tlvs);
    SET(0, LATIN1(HEADER_LENGTH, e0));          /* service_type */
    SET(1, OCTET(e0 + 1));                      /* source_addr_ton */
    SET(2, OCTET(e0 + 2));                      /* source_addr_npi */
    SET(3, LATIN1(e0 + 3, e1));                 /* source_addr */
    SET(4, OCTET(e1 + 1));                      /* dest_addr_ton */
    SET(5, OCTET(e1 + 2));                      /* dest_addr_npi */
    SET(6, LATIN1(e1 + 3, e2));                 /* destination_addr */
    SET(7, OCTET(e2 + 1));                      /* esm_class */
    SET(8, OCTET(e2 + 2));                      /* protocol_id */
    SET(9, OCTET(e2 + 3));                      /* priority_flag */
    SET(10, LATIN1(e2 + 4, e3));                /* schedule_delivery_time */
    SET(11, LATIN1(e3 + 1, e4));                /* validity_period */
    SET(12, OCTET(e4 + 1));                     /* registered_delivery */
    SET(13, OCTET(e4 + 2));                     /* replace_if_present_flag */
    SET(14, OCTET(e4 + 3));                     /* data_coding */
    SET(15, OCTET(e4 + 4));                     /* sm_default_msg_id */
    SET(16, PyBytes_FromStringAndSize((const char *)p + e4 + 6, sm_end - e4 - 6)); /* short_message */
    return out;
}

#undef SET
#undef LATIN1
#undef OCTET

/* --- encode ------------------------------------------------------------------------------------- */

/* The octets of a C-Octet string value, or NULL if it is not an exact str of latin-1 characters
 * without NUL and shorter than `max` (NUL included).  An exact str only: a subclass may override
 * encode(), which the Python path honours. */
static const char *
cstr_octets(PyObject *value, Py_ssize_t max, Py_ssize_t *size)
{
    /* a str whose characters all fit in latin-1 is stored one octet per character (PEP 393) */
    if (!PyUnicode_CheckExact(value) || PyUnicode_KIND(value) != PyUnicode_1BYTE_KIND) {
        return NULL;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(value);
    const char *data = (const char *)PyUnicode_1BYTE_DATA(value);
    if (len >= max || memchr(data, 0, (size_t)len) != NULL) {
        return NULL;
    }
    *size = len;
    return data;
}

/* An int 0..255 (bool and int subclasses too, as the Python path's %c takes them), else -1. */
static int
octet_value(PyObject *value)
{
    if (!PyLong_Check(value)) {
        return -1;
    }
    int overflow;
    long v = PyLong_AsLongAndOverflow(value, &overflow);
    return overflow || v < 0 || v > 255 ? -1 : (int)v;
}

/* Tag and value of one optional parameter if plainly valid: tag an int 0..0xFFFF, value exact
 * bytes of at most 0xFFFF octets.  Returns 1 with a new reference in *value, or 0.  An attribute
 * that raises is cleared and answered with 0: the Python path reads it again and reports it. */
static int
tlv_parts(speedups_state *st, PyObject *tlv, long *tag, PyObject **value)
{
    PyObject *t = PyObject_GetAttr(tlv, st->str_tag);
    if (t == NULL) {
        PyErr_Clear();
        return 0;
    }
    int overflow = 0;
    *tag = PyLong_Check(t) ? PyLong_AsLongAndOverflow(t, &overflow) : -1;
    Py_DECREF(t);
    if (overflow || *tag < 0 || *tag > 0xFFFF) {
        return 0;
    }
    *value = PyObject_GetAttr(tlv, st->str_value);
    if (*value == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!PyBytes_CheckExact(*value) || PyBytes_GET_SIZE(*value) > TLV_MAX) {
        Py_CLEAR(*value);
        return 0;
    }
    return 1;
}

/* argument positions of encode_sm, in field order */
enum {
    A_SERVICE_TYPE, A_SOURCE_TON, A_SOURCE_NPI, A_SOURCE_ADDR, A_DEST_TON, A_DEST_NPI, A_DEST_ADDR,
    A_ESM_CLASS, A_PROTOCOL_ID, A_PRIORITY_FLAG, A_SCHEDULE, A_VALIDITY, A_REGISTERED_DELIVERY,
    A_REPLACE_IF_PRESENT, A_DATA_CODING, A_SM_DEFAULT_MSG_ID, A_SHORT_MESSAGE, A_OPTIONAL_PARAMETERS,
    A_COUNT
};

/* which arguments are C-Octet strings, and their maximum octets with the NUL; 0 = an octet field */
static const Py_ssize_t CSTR_MAX[A_SHORT_MESSAGE] = {
    [A_SERVICE_TYPE] = SERVICE_TYPE_MAX,
    [A_SOURCE_ADDR] = ADDR_MAX,
    [A_DEST_ADDR] = ADDR_MAX,
    [A_SCHEDULE] = TIME_MAX,
    [A_VALIDITY] = TIME_MAX,
};

PyDoc_STRVAR(encode_sm_doc,
"encode_sm(service_type, source_addr_ton, ..., short_message, optional_parameters, /)\n--\n\n"
"The body of a submit_sm / deliver_sm from its 18 field values in field order, or None if any\n"
"value is not plainly valid.");

static PyObject *
encode_sm(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("encode_sm", nargs, A_COUNT)) {
        return NULL;
    }
    const char *str_data[A_SHORT_MESSAGE];
    Py_ssize_t str_size[A_SHORT_MESSAGE];
    unsigned char octet[A_SHORT_MESSAGE];
    Py_ssize_t size = 0;

    /* first pass: check every field and add up the size */
    for (int i = 0; i < A_SHORT_MESSAGE; i++) {
        if (CSTR_MAX[i]) {
            str_data[i] = cstr_octets(args[i], CSTR_MAX[i], &str_size[i]);
            if (str_data[i] == NULL) {
                Py_RETURN_NONE;
            }
            size += str_size[i] + 1;
        }
        else {
            int v = octet_value(args[i]);
            if (v < 0) {
                Py_RETURN_NONE;
            }
            octet[i] = (unsigned char)v;
            size += 1;
        }
    }
    PyObject *sm = args[A_SHORT_MESSAGE];
    if (!PyBytes_CheckExact(sm) || PyBytes_GET_SIZE(sm) > SM_MAX) {
        Py_RETURN_NONE;
    }
    size += 1 + PyBytes_GET_SIZE(sm);
    PyObject *params = args[A_OPTIONAL_PARAMETERS];
    if (!PyTuple_CheckExact(params)) {
        Py_RETURN_NONE;
    }
    speedups_state *st = get_state(module);
    Py_ssize_t nparams = PyTuple_GET_SIZE(params);
    for (Py_ssize_t i = 0; i < nparams; i++) {
        long tag;
        PyObject *value;
        if (!tlv_parts(st, PyTuple_GET_ITEM(params, i), &tag, &value)) {
            Py_RETURN_NONE;
        }
        size += 4 + PyBytes_GET_SIZE(value);
        Py_DECREF(value);
    }

    /* second pass: write */
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) {
        return NULL;
    }
    char *w = PyBytes_AS_STRING(out);
    char *const w_end = w + size;
    for (int i = 0; i < A_SHORT_MESSAGE; i++) {
        if (CSTR_MAX[i]) {
            memcpy(w, str_data[i], (size_t)str_size[i]);
            w += str_size[i];
            *w++ = '\0';
        }
        else {
            *w++ = (char)octet[i];
        }
    }
    *w++ = (char)PyBytes_GET_SIZE(sm);
    memcpy(w, PyBytes_AS_STRING(sm), (size_t)PyBytes_GET_SIZE(sm));
    w += PyBytes_GET_SIZE(sm);
    for (Py_ssize_t i = 0; i < nparams; i++) {
        long tag;
        PyObject *value;
        /* the attributes are read again rather than kept: a property could answer differently,
         * so the size is re-checked against the buffer instead of trusted */
        if (!tlv_parts(st, PyTuple_GET_ITEM(params, i), &tag, &value)) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        if (PyBytes_GET_SIZE(value) + 4 > w_end - w) {
            Py_DECREF(value);
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        Py_ssize_t length = PyBytes_GET_SIZE(value);
        *w++ = (char)(tag >> 8);
        *w++ = (char)tag;
        *w++ = (char)(length >> 8);
        *w++ = (char)length;
        memcpy(w, PyBytes_AS_STRING(value), (size_t)length);
        w += length;
        Py_DECREF(value);
    }
    if (w != w_end) { /* only if a property changed its answer between the passes */
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    return out;
}

/* --- module ------------------------------------------------------------------------------------- */

static PyMethodDef speedups_methods[] = {
    {"decode_sm", (PyCFunction)(void (*)(void))decode_sm, METH_FASTCALL, decode_sm_doc},
    {"encode_sm", (PyCFunction)(void (*)(void))encode_sm, METH_FASTCALL, encode_sm_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_exec(PyObject *module)
{
    speedups_state *st = get_state(module);
    st->str_tag = PyUnicode_InternFromString("tag");
    st->str_value = PyUnicode_InternFromString("value");
    return st->str_tag == NULL || st->str_value == NULL ? -1 : 0;
}

static int
speedups_traverse(PyObject *module, visitproc visit, void *arg)
{
    speedups_state *st = get_state(module);
    Py_VISIT(st->str_tag);
    Py_VISIT(st->str_value);
    return 0;
}

static int
speedups_clear(PyObject *module)
{
    speedups_state *st = get_state(module);
    Py_CLEAR(st->str_tag);
    Py_CLEAR(st->str_value);
    return 0;
}

static void
speedups_free(void *module)
{
    speedups_clear((PyObject *)module);
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
    {0, NULL},
};

PyDoc_STRVAR(speedups_doc,
"Optional C accelerator of the submit_sm / deliver_sm codec of protocols.smpp.pdu.\n\n"
"Each function returns None when its input is not the plain valid case; the caller then runs\n"
"the pure-Python reference, which raises the exact error. Set TGW_PURE_PYTHON=1 to ignore it.");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "protocols.smpp._speedups",
    .m_doc = speedups_doc,
    .m_size = sizeof(speedups_state),
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
    .m_traverse = speedups_traverse,
    .m_clear = speedups_clear,
    .m_free = speedups_free,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
