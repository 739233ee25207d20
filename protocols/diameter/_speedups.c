/*
 * Optional C accelerator of the Diameter decode side.
 *
 * - scan_avps / decode_avps: the AVP scan of protocols/diameter/codec.py.  RFC 6733 section 3: a
 *   message is the 20-octet header (parsed in Python) followed by AVPs up to Message Length;
 *   section 4.1: each AVP is a header (code, flags, AVP Length; a Vendor-ID exactly when the V bit
 *   is set), its data, and zero padding to a multiple of 4 octets that the AVP Length does not
 *   count.  Non-zero padding is refused (codec.py: re-encoding could not give the same octets).
 * - members / collect: the grammar checks of protocols/diameter/credit_control.py (RFC 6733
 *   section 7.5 for the errors, the command grammars of RFC 4006 section 3 and the Grouped AVPs
 *   of section 8): every AVP named by the grammar carries the M bit its definition demands (else
 *   3009), none occurs more often than allowed (5009) and no required one is missing (5005); an
 *   AVP the grammar does not name passes when the dictionary's M rule holds, or when it is
 *   unknown and without the M bit (RFC 6733 section 4.1: else 5001, unless lenient).
 * - Found and Reader: credit_control's _PyFound accessors and the common case of its typed value
 *   readers (RFC 6733 sections 4.2 and 4.3: Unsigned32 and Enumerated 4 octets, Unsigned64 8,
 *   UTF8String UTF-8, DiameterIdentity ASCII).
 *
 * codec.py and credit_control.py stay the reference and the only places that report faults: each
 * function here either returns the result of the plain valid case or returns None, and the caller
 * then runs the pure-Python code, which produces the same result or raises the exact DecodeError /
 * FailedAvpError with its Result-Code and Failed-AVP (a Reader calls its Python fallback instead).
 * So this file never has to name a fault or pick a Result-Code, and any doubt (odd types,
 * subclasses, limits, table entries of an unexpected shape) is settled by returning None.
 *
 * AVP layout (section 4.1), all integers big-endian:
 *   AVP Code (4) | flags (1) AVP Length (3) | [Vendor-ID (4) if V] | data | zero padding to 4
 *
 * The module keeps no global mutable state (PEP 489 multi-phase init): its module state holds the
 * Found and Reader heap types and the Avp class last passed in with its four slot descriptors
 * (looked up again whenever a call passes another class); everything else is passed in by the
 * caller.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

#define V_BIT 0x80 /* AVP flag V: a Vendor-ID follows the AVP Length (section 4.1) */
#define M_BIT 0x40 /* AVP flag M: the receiver must understand the AVP (section 4.1) */
#define AVP_HEADER 8
#define AVP_VENDOR_HEADER 12

enum { F_CODE, F_FLAGS, F_VENDOR_ID, F_DATA, F_COUNT };
static const char *const FIELD_NAMES[F_COUNT] = {"code", "flags", "vendor_id", "data"};

typedef struct {
    /* the Avp class whose slot descriptors are below (NULL until a call passes one) */
    PyObject *avp_type;
    PyObject *descr[F_COUNT];
    PyObject *found_type;  /* Found, a heap type of this module */
    PyObject *reader_type; /* Reader, likewise */
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

static inline uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* --- the Avp class ------------------------------------------------------------------------------ */

/* The Avp class of one call and its slot descriptors, strong references held for the call: an
 * allocation may run a collection, and a finalizer may call in with another class meanwhile. */
typedef struct {
    PyTypeObject *type;
    PyObject *descr[F_COUNT];
} avp_class;

static void
release_avp_class(avp_class *cls)
{
    Py_CLEAR(cls->type);
    for (int i = 0; i < F_COUNT; i++) {
        Py_CLEAR(cls->descr[i]);
    }
}

static int lookup_avp_type(speedups_state *st, PyObject *type);

/* `type` as the Avp class of this call, in *cls (new references), when it is a plain slotted class
 * with its own slot descriptor for each of the four fields, as codec.py's _slot_setter takes them
 * (vars(cls)[name]).  1 when usable, 0 when not (the caller returns None), -1 with an exception. */
static int
use_avp_type(speedups_state *st, PyObject *type, avp_class *cls)
{
    if (type != st->avp_type) {
        int rc = lookup_avp_type(st, type);
        if (rc <= 0) {
            return rc;
        }
    }
    cls->type = (PyTypeObject *)Py_NewRef(st->avp_type);
    for (int i = 0; i < F_COUNT; i++) {
        cls->descr[i] = Py_NewRef(st->descr[i]);
    }
    return 1;
}

/* Make `type` the state's Avp class (a cache: looked up again only when a call passes another).
 * 1 when `type` can be used, 0 when not, -1 with an exception set.  A class that is not a plain
 * slotted class (no member descriptor of its own for a field, abstract, or one whose instances are
 * not made by tp_alloc alone) is left to Python. */
static int
lookup_avp_type(speedups_state *st, PyObject *type)
{
    if (!PyType_Check(type) || PyType_HasFeature((PyTypeObject *)type, Py_TPFLAGS_IS_ABSTRACT) ||
        ((PyTypeObject *)type)->tp_alloc == NULL) {
        return 0;
    }
    PyObject *dict = PyObject_GetAttrString(type, "__dict__");
    if (dict == NULL) {
        return -1;
    }
    PyObject *descr[F_COUNT] = {NULL};
    int ok = 1;
    for (int i = 0; i < F_COUNT && ok == 1; i++) {
        PyObject *name = PyUnicode_FromString(FIELD_NAMES[i]);
        if (name == NULL) {
            ok = -1;
            break;
        }
        descr[i] = PyObject_GetItem(dict, name);
        Py_DECREF(name);
        if (descr[i] == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                ok = -1;
                break;
            }
            PyErr_Clear();
            ok = 0;
        }
        /* only a member descriptor of a writable object slot of this very class is known to
         * store and read any object without running Python code */
        else if (!Py_IS_TYPE(descr[i], &PyMemberDescr_Type) ||
                 PyDescr_TYPE(descr[i]) != (PyTypeObject *)type ||
                 ((PyMemberDescrObject *)descr[i])->d_member->type != T_OBJECT_EX ||
                 ((PyMemberDescrObject *)descr[i])->d_member->flags & READONLY) {
            ok = 0;
        }
    }
    Py_DECREF(dict);
    if (ok == 1) { /* swap the new class in whole, then let the old one go */
        PyObject *old_type = st->avp_type;
        st->avp_type = Py_NewRef(type);
        for (int i = 0; i < F_COUNT; i++) {
            PyObject *old = st->descr[i];
            st->descr[i] = descr[i]; /* steals */
            descr[i] = old;
        }
        Py_XDECREF(old_type);
    }
    for (int i = 0; i < F_COUNT; i++) {
        Py_XDECREF(descr[i]);
    }
    return ok;
}

/* --- one AVP ------------------------------------------------------------------------------------ */

typedef struct {
    uint32_t code;
    int flags;
    uint32_t vendor_id; /* valid when flags has V_BIT */
    Py_ssize_t value_at;  /* offset of the data */
    Py_ssize_t value_end; /* offset after the data, before the padding */
    Py_ssize_t next;      /* offset of the next AVP */
} avp_header;

/* Read the AVP at p[offset:end] into *h; 1 if it is well-formed in the sense of codec._scan_avps
 * (a whole header, an AVP Length that covers it and does not overrun `end` once padded, zero
 * padding), else 0.  The caller then returns None: Python names the fault (5014). */
static int
read_avp(const unsigned char *p, Py_ssize_t offset, Py_ssize_t end, avp_header *h)
{
    if (end - offset < AVP_HEADER) {
        return 0;
    }
    uint32_t flags_length = be32(p + offset + 4);
    Py_ssize_t length = (Py_ssize_t)(flags_length & 0xFFFFFF);
    int flags = (int)(flags_length >> 24);
    Py_ssize_t header = flags & V_BIT ? AVP_VENDOR_HEADER : AVP_HEADER;
    Py_ssize_t padded = (length + 3) & ~(Py_ssize_t)3;
    /* length < 2**24, so no sum here overflows */
    if (length < header || padded > end - offset) {
        return 0;
    }
    for (Py_ssize_t i = offset + length; i < offset + padded; i++) {
        if (p[i]) {
            return 0; /* a re-encode would not give the same octets: 5014 (codec.py's docstring) */
        }
    }
    h->code = be32(p + offset);
    h->flags = flags;
    h->vendor_id = header == AVP_VENDOR_HEADER ? be32(p + offset + 8) : 0;
    h->value_at = offset + header;
    h->value_end = offset + length;
    h->next = offset + padded;
    return 1;
}

/* The AVP count of p[offset:end] if the whole run is well-formed, else -1. */
static Py_ssize_t
count_avps(const unsigned char *p, Py_ssize_t offset, Py_ssize_t end)
{
    Py_ssize_t count = 0;
    avp_header h;
    while (offset < end) {
        if (!read_avp(p, offset, end, &h)) {
            return -1;
        }
        offset = h.next;
        count++;
    }
    return count;
}

/* (code, flags, vendor_id, data) of a read AVP, codec.RawAvp: new reference or NULL */
static PyObject *
raw_tuple(const unsigned char *p, const avp_header *h)
{
    PyObject *code = PyLong_FromUnsignedLong(h->code);
    PyObject *flags = PyLong_FromLong(h->flags);
    PyObject *vendor;
    if (h->flags & V_BIT) {
        vendor = PyLong_FromUnsignedLong(h->vendor_id);
    }
    else {
        vendor = Py_NewRef(Py_None);
    }
    PyObject *data = PyBytes_FromStringAndSize((const char *)p + h->value_at, h->value_end - h->value_at);
    if (code == NULL || flags == NULL || vendor == NULL || data == NULL) {
        Py_XDECREF(code);
        Py_XDECREF(flags);
        Py_XDECREF(vendor);
        Py_XDECREF(data);
        return NULL;
    }
    PyObject *out = PyTuple_New(4);
    if (out == NULL) {
        Py_DECREF(code);
        Py_DECREF(flags);
        Py_DECREF(vendor);
        Py_DECREF(data);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, code);
    PyTuple_SET_ITEM(out, 1, flags);
    PyTuple_SET_ITEM(out, 2, vendor);
    PyTuple_SET_ITEM(out, 3, data);
    return out;
}

/* The run p[offset:end] of `data` if `data` is exact bytes and 0 <= offset <= end <= len(data);
 * else NULL (no exception: the caller returns None).  Only exact ints are read, so no Python code
 * (__index__) runs. */
static const unsigned char *
run_bounds(PyObject *data, PyObject *offset_obj, PyObject *end_obj, Py_ssize_t *offset, Py_ssize_t *end)
{
    if (!PyBytes_CheckExact(data) || !PyLong_CheckExact(offset_obj) || !PyLong_CheckExact(end_obj)) {
        return NULL;
    }
    int overflow_a, overflow_b;
    long a = PyLong_AsLongAndOverflow(offset_obj, &overflow_a);
    long b = PyLong_AsLongAndOverflow(end_obj, &overflow_b);
    if (overflow_a || overflow_b || a < 0 || a > b || b > PyBytes_GET_SIZE(data)) {
        return NULL;
    }
    *offset = (Py_ssize_t)a;
    *end = (Py_ssize_t)b;
    return (const unsigned char *)PyBytes_AS_STRING(data);
}

/* --- scan_avps / decode_avps ---------------------------------------------------------------------- */

PyDoc_STRVAR(scan_avps_doc,
"scan_avps(data, offset, end, /)\n--\n\n"
"codec._scan_avps: the AVPs of data[offset:end] as (code, flags, vendor_id, data) tuples, or None\n"
"if the run is not well-formed (or data is not bytes, or the bounds are off).");

static PyObject *
scan_avps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module; /* needs no module state */
    if (!check_nargs("scan_avps", nargs, 3)) {
        return NULL;
    }
    Py_ssize_t offset, end;
    const unsigned char *p = run_bounds(args[0], args[1], args[2], &offset, &end);
    if (p == NULL) {
        Py_RETURN_NONE;
    }
    /* count first so the list is allocated once; this pass also checks the framing */
    Py_ssize_t count = count_avps(p, offset, end);
    if (count < 0) {
        Py_RETURN_NONE;
    }
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        return NULL;
    }
    avp_header h;
    for (Py_ssize_t i = 0; i < count; i++) {
        read_avp(p, offset, end, &h); /* checked by count_avps */
        PyObject *item = raw_tuple(p, &h);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item); /* steals */
        offset = h.next;
    }
    return out;
}

/* A new Avp of the state's class from a read AVP, made as codec.py makes the decoder's: allocated
 * without __init__ (whose only extra is the vendor_id check, true by construction here) and each
 * field set through its slot descriptor, which bypasses the frozen dataclass's __setattr__. */
static PyObject *
new_avp(const avp_class *cls, const unsigned char *p, const avp_header *h)
{
    PyObject *values[F_COUNT];
    values[F_CODE] = PyLong_FromUnsignedLong(h->code);
    values[F_FLAGS] = PyLong_FromLong(h->flags);
    values[F_VENDOR_ID] = h->flags & V_BIT ? PyLong_FromUnsignedLong(h->vendor_id) : Py_NewRef(Py_None);
    values[F_DATA] = PyBytes_FromStringAndSize((const char *)p + h->value_at, h->value_end - h->value_at);
    PyObject *item = NULL;
    for (int i = 0; i < F_COUNT; i++) {
        if (values[i] == NULL) {
            goto done;
        }
    }
    item = cls->type->tp_alloc(cls->type, 0);
    if (item == NULL) {
        goto done;
    }
    for (int i = 0; i < F_COUNT; i++) {
        PyObject *descr = cls->descr[i];
        if (Py_TYPE(descr)->tp_descr_set(descr, item, values[i]) < 0) {
            Py_CLEAR(item);
            goto done;
        }
    }
done:
    for (int i = 0; i < F_COUNT; i++) {
        Py_XDECREF(values[i]);
    }
    return item;
}

PyDoc_STRVAR(decode_avps_doc,
"decode_avps(data, offset, end, avp_class, /)\n--\n\n"
"codec._decode_avps: the AVPs of data[offset:end] as a tuple of avp_class instances, or None if\n"
"the run is not well-formed (or data is not bytes, the bounds are off, or avp_class is not a plain\n"
"slotted class with code, flags, vendor_id and data).");

static PyObject *
decode_avps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("decode_avps", nargs, 4)) {
        return NULL;
    }
    Py_ssize_t offset, end;
    const unsigned char *p = run_bounds(args[0], args[1], args[2], &offset, &end);
    if (p == NULL) {
        Py_RETURN_NONE;
    }
    Py_ssize_t count = count_avps(p, offset, end);
    if (count < 0) {
        Py_RETURN_NONE;
    }
    avp_class cls;
    int usable = use_avp_type(get_state(module), args[3], &cls);
    if (usable <= 0) {
        return usable < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *out = PyTuple_New(count);
    for (Py_ssize_t i = 0; out != NULL && i < count; i++) {
        avp_header h;
        read_avp(p, offset, end, &h); /* checked by count_avps */
        PyObject *item = new_avp(&cls, p, &h);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, item);
        offset = h.next;
    }
    release_avp_class(&cls);
    return out;
}

/* --- grammar checks --------------------------------------------------------------------------------- */

/* The grammar arguments of members() and collect(), checked once per call. */
typedef struct {
    PyObject *by_key;   /* grammar.by_key: key -> (name, M rule, most) */
    PyObject *m_rules;  /* the dictionary's key -> M rule (credit_control._DICTIONARY_M_RULE) */
    PyObject *required; /* the names that must occur: a tuple or a frozenset */
    int strict;         /* reject unknown AVPs with the M bit */
} grammar_args;

/* 1 if the arguments have the shapes credit_control.py passes, else 0 (the caller returns None). */
static int
read_grammar_args(PyObject *const *args, grammar_args *g)
{
    g->by_key = args[0];
    g->m_rules = args[1];
    g->required = args[3];
    if (!PyDict_CheckExact(g->by_key) || !PyDict_CheckExact(g->m_rules) ||
        !(PyTuple_CheckExact(g->required) || PyFrozenSet_CheckExact(g->required))) {
        return 0;
    }
    /* a bool or an int: truth without running Python code (another object's __bool__ could) */
    PyObject *strict = args[2];
    if (PyBool_Check(strict)) {
        g->strict = strict == Py_True;
    }
    else if (PyLong_CheckExact(strict)) {
        g->strict = PyObject_IsTrue(strict); /* an exact int's truth runs no Python code */
    }
    else {
        return 0;
    }
    return 1;
}

/* An M rule of the tables: None (either) or an exact int compared with the AVP's M bit.
 * 1 when `flags` keeps the rule, 0 when it does not (or the rule is of another shape). */
static int
m_rule_kept(PyObject *rule, int flags)
{
    if (rule == Py_None) {
        return 1;
    }
    if (!PyLong_CheckExact(rule)) {
        return 0;
    }
    int overflow;
    long value = PyLong_AsLongAndOverflow(rule, &overflow);
    return !overflow && value == (flags & M_BIT);
}

enum { SORT_DECLINE = 0, SORT_KEEP = 1, SORT_SKIP = 2, SORT_ERROR = -1 };

/* Where an AVP of `key` with `flags` goes (credit_control's collect / _outside_grammar / members):
 * SORT_KEEP with *name (borrowed) and *most (-1: no limit) when the grammar names it with a kept M
 * rule; SORT_SKIP when the grammar lets it by (known to the dictionary with a kept M rule, or
 * unknown without the M bit or when not strict); SORT_DECLINE where Python raises (3009, 5001)
 * or an entry has an unexpected shape; SORT_ERROR with an exception set. */
static int
sort_avp(const grammar_args *g, PyObject *key, int flags, PyObject **name, Py_ssize_t *most)
{
    PyObject *entry = PyDict_GetItemWithError(g->by_key, key); /* borrowed */
    if (entry == NULL) {
        if (PyErr_Occurred()) {
            return SORT_ERROR;
        }
        PyObject *rule = PyDict_GetItemWithError(g->m_rules, key); /* borrowed */
        if (rule == NULL) {
            if (PyErr_Occurred()) {
                return SORT_ERROR;
            }
            /* RFC 6733 4.1: an unknown AVP with the M bit is answered 5001 */
            return flags & M_BIT && g->strict ? SORT_DECLINE : SORT_SKIP;
        }
        return m_rule_kept(rule, flags) ? SORT_SKIP : SORT_DECLINE; /* else 3009 */
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) {
        return SORT_DECLINE;
    }
    PyObject *name_obj = PyTuple_GET_ITEM(entry, 0);
    PyObject *most_obj = PyTuple_GET_ITEM(entry, 2);
    /* an exact str: hashing and comparing it as a key of the result runs no Python code */
    if (!PyUnicode_CheckExact(name_obj) || !m_rule_kept(PyTuple_GET_ITEM(entry, 1), flags)) {
        return SORT_DECLINE;
    }
    if (most_obj == Py_None) {
        *most = -1;
    }
    else {
        if (!PyLong_CheckExact(most_obj)) {
            return SORT_DECLINE;
        }
        *most = PyLong_AsSsize_t(most_obj);
        if (*most < 0) { /* out of range, or a limit no list keeps */
            PyErr_Clear();
            return SORT_DECLINE;
        }
    }
    *name = name_obj;
    return SORT_KEEP;
}

/* Append `item` to found[name]; 1 if the name then still is within `most` (-1: any), 0 if over
 * (RFC 6733 7.5: 5009, Python's to report), -1 with an exception set. */
static int
add_found(PyObject *found, PyObject *name, PyObject *item, Py_ssize_t most)
{
    PyObject *items = PyDict_GetItemWithError(found, name); /* borrowed */
    if (items == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        items = PyList_New(1);
        if (items == NULL) {
            return -1;
        }
        PyList_SET_ITEM(items, 0, Py_NewRef(item));
        int rc = PyDict_SetItem(found, name, items);
        Py_DECREF(items);
        return rc < 0 ? -1 : 1; /* Python counts only on appending */
    }
    if (PyList_Append(items, item) < 0) {
        return -1;
    }
    return most < 0 || PyList_GET_SIZE(items) <= most;
}

/* 1 if every required name is a key of `found` (5005 otherwise), 0 if not, -1 on error. */
static int
has_required(const grammar_args *g, PyObject *found)
{
    if (PyTuple_CheckExact(g->required)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(g->required); i++) {
            int rc = PyDict_Contains(found, PyTuple_GET_ITEM(g->required, i));
            if (rc <= 0) {
                return rc;
            }
        }
        return 1;
    }
    PyObject *it = PyObject_GetIter(g->required);
    if (it == NULL) {
        return -1;
    }
    PyObject *name;
    int rc = 1;
    while (rc == 1 && (name = PyIter_Next(it)) != NULL) {
        rc = PyDict_Contains(found, name);
        Py_DECREF(name);
    }
    Py_DECREF(it);
    return rc == 1 && PyErr_Occurred() ? -1 : rc;
}

/* The grammar key of an AVP: its code for IETF AVPs, (code, vendor_id) otherwise (credit_control's
 * _key); `vendor` is None or an exact int.  New reference, or NULL with an exception set. */
static PyObject *
grammar_key(PyObject *code, PyObject *vendor)
{
    if (vendor == Py_None || !PyObject_IsTrue(vendor)) { /* an exact int: runs no Python code */
        return Py_NewRef(code);
    }
    return PyTuple_Pack(2, code, vendor);
}

/* Finish members() / collect(): `found` (stolen) if the required names are all there, else None. */
static PyObject *
found_or_none(const grammar_args *g, PyObject *found)
{
    int rc = has_required(g, found);
    if (rc == 1) {
        return found;
    }
    Py_DECREF(found);
    return rc < 0 ? NULL : Py_NewRef(Py_None);
}

PyDoc_STRVAR(members_doc,
"members(data, by_key, m_rules, strict, required, /)\n--\n\n"
"credit_control._Parser.members' one pass: a Grouped AVP's data sorted by grammar name, a dict of\n"
"lists of (code, flags, vendor_id, data) tuples, when the octets are well-formed, every member is\n"
"named by the grammar with the M bit it wants or let by, no name occurs too often and every\n"
"required name occurs; else None.");

static PyObject *
members(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (!check_nargs("members", nargs, 5)) {
        return NULL;
    }
    grammar_args g;
    if (!PyBytes_CheckExact(args[0]) || !read_grammar_args(args + 1, &g)) {
        Py_RETURN_NONE;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t offset = 0, end = PyBytes_GET_SIZE(args[0]);
    PyObject *found = PyDict_New();
    if (found == NULL) {
        return NULL;
    }
    avp_header h;
    while (offset < end) {
        if (!read_avp(p, offset, end, &h)) {
            goto decline;
        }
        offset = h.next;
        PyObject *code = PyLong_FromUnsignedLong(h.code);
        if (code == NULL) {
            goto error;
        }
        PyObject *vendor = h.flags & V_BIT ? PyLong_FromUnsignedLong(h.vendor_id) : Py_NewRef(Py_None);
        if (vendor == NULL) {
            Py_DECREF(code);
            goto error;
        }
        PyObject *key = grammar_key(code, vendor);
        PyObject *name = NULL;
        Py_ssize_t most = -1;
        int where = key == NULL ? SORT_ERROR : sort_avp(&g, key, h.flags, &name, &most);
        Py_XDECREF(key);
        int rc = where;
        if (where == SORT_KEEP) {
            PyObject *data =
                PyBytes_FromStringAndSize((const char *)p + h.value_at, h.value_end - h.value_at);
            PyObject *flags = data == NULL ? NULL : PyLong_FromLong(h.flags);
            PyObject *item = flags == NULL ? NULL : PyTuple_Pack(4, code, flags, vendor, data);
            Py_XDECREF(data);
            Py_XDECREF(flags);
            rc = item == NULL ? -1 : add_found(found, name, item, most);
            Py_XDECREF(item);
        }
        Py_DECREF(code);
        Py_DECREF(vendor);
        if (rc < 0) {
            goto error;
        }
        if (rc == 0) {
            goto decline; /* SORT_DECLINE, or a name over its limit */
        }
    }
    return found_or_none(&g, found);

decline:
    Py_DECREF(found);
    Py_RETURN_NONE;
error:
    Py_DECREF(found);
    return NULL;
}

/* The four fields of `item`, an instance of exactly the state's Avp class, as new references in
 * out[]; 1, or 0 when a field is unset (Python raises the AttributeError) or of a type other than
 * the decoder makes for code, flags and vendor_id (exact ints; vendor_id may be None), -1 on error.
 * `data` is taken as it is: collect only carries it along. */
static int
avp_fields(const avp_class *cls, PyObject *item, PyObject *out[F_COUNT])
{
    for (int i = 0; i < F_COUNT; i++) {
        PyObject *descr = cls->descr[i];
        out[i] = Py_TYPE(descr)->tp_descr_get(descr, item, (PyObject *)cls->type);
        if (out[i] == NULL) {
            for (int j = 0; j < i; j++) {
                Py_CLEAR(out[j]);
            }
            if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
                PyErr_Clear();
                return 0;
            }
            return -1;
        }
    }
    if (PyLong_CheckExact(out[F_CODE]) && PyLong_CheckExact(out[F_FLAGS]) &&
        (out[F_VENDOR_ID] == Py_None || PyLong_CheckExact(out[F_VENDOR_ID]))) {
        return 1;
    }
    for (int i = 0; i < F_COUNT; i++) {
        Py_CLEAR(out[i]);
    }
    return 0;
}

PyDoc_STRVAR(collect_doc,
"collect(avps, avp_class, by_key, m_rules, strict, required, /)\n--\n\n"
"credit_control._Parser.collect of a message's AVPs (a tuple of avp_class instances) when it\n"
"raises nothing: the dict of lists of (code, flags, vendor_id, data) tuples by grammar name; else\n"
"None.");

static PyObject *
collect(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("collect", nargs, 6)) {
        return NULL;
    }
    PyObject *avps = args[0];
    grammar_args g;
    if (!PyTuple_CheckExact(avps) || !read_grammar_args(args + 2, &g)) {
        Py_RETURN_NONE;
    }
    avp_class cls;
    int usable = use_avp_type(get_state(module), args[1], &cls);
    if (usable <= 0) {
        return usable < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *found = PyDict_New();
    if (found == NULL) {
        release_avp_class(&cls);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(avps); i++) {
        PyObject *avp = PyTuple_GET_ITEM(avps, i); /* borrowed: the tuple holds it */
        if (!Py_IS_TYPE(avp, cls.type)) {
            goto decline; /* a subclass may override the fields */
        }
        PyObject *field[F_COUNT];
        int rc = avp_fields(&cls, avp, field);
        if (rc <= 0) {
            if (rc < 0) {
                goto error;
            }
            goto decline;
        }
        /* flags outside a C long cannot be an M-bit match worth a fast path */
        int overflow;
        long flags = PyLong_AsLongAndOverflow(field[F_FLAGS], &overflow);
        PyObject *key = NULL;
        if (!overflow) {
            key = grammar_key(field[F_CODE], field[F_VENDOR_ID]);
            rc = key == NULL ? -1 : SORT_DECLINE;
        }
        else {
            rc = SORT_DECLINE;
        }
        if (key != NULL) {
            PyObject *name = NULL;
            Py_ssize_t most = -1;
            /* the M bit of a negative flags value is the two's complement bit, as in Python */
            int where = sort_avp(&g, key, (int)(flags & 0xFF), &name, &most);
            Py_DECREF(key);
            rc = where;
            if (where == SORT_KEEP) {
                PyObject *item = PyTuple_New(F_COUNT);
                if (item == NULL) {
                    rc = -1;
                }
                else {
                    for (int j = 0; j < F_COUNT; j++) {
                        PyTuple_SET_ITEM(item, j, Py_NewRef(field[j]));
                    }
                    rc = add_found(found, name, item, most);
                    Py_DECREF(item);
                }
            }
        }
        for (int j = 0; j < F_COUNT; j++) {
            Py_DECREF(field[j]);
        }
        if (rc < 0) {
            goto error;
        }
        if (rc == 0) {
            goto decline;
        }
    }
    release_avp_class(&cls);
    return found_or_none(&g, found);

decline:
    release_avp_class(&cls);
    Py_DECREF(found);
    Py_RETURN_NONE;
error:
    release_avp_class(&cls);
    Py_DECREF(found);
    return NULL;
}

/* --- Found: the sorted AVPs and their typed accessors ---------------------------------------------- */

/* credit_control._PyFound in C: the same four accessors over the same dict, without a Python frame
 * per call (a CCR-U makes some thirty).  Each does what the Python method does, step by step and
 * with the same exceptions (KeyError, IndexError, the decoder's own).  It takes an exact dict, as
 * members(), collect() and the Python collect build; its values are read generically, with a
 * fast path for the exact lists they hold. */
typedef struct {
    PyObject_HEAD
    PyObject *avps; /* name -> list of RawAvp, only the names that occur */
} FoundObject;

static PyObject *
found_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *avps;
    static char *kwlist[] = {"avps", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!:Found", kwlist, &PyDict_Type, &avps)) {
        return NULL;
    }
    if (!PyDict_CheckExact(avps)) {
        PyErr_SetString(PyExc_TypeError, "Found() takes an exact dict");
        return NULL;
    }
    FoundObject *self = (FoundObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->avps = Py_NewRef(avps);
    }
    return (PyObject *)self;
}

static int
found_traverse(FoundObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self)); /* a heap type: its instances keep it alive */
    Py_VISIT(self->avps);
    return 0;
}

static int
found_clear(FoundObject *self)
{
    Py_CLEAR(self->avps);
    return 0;
}

static void
found_dealloc(FoundObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    found_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}

/* self._avps.get(name): a new reference, NULL with *missing set when absent, NULL on error */
static PyObject *
found_get(FoundObject *self, PyObject *name, int *missing)
{
    PyObject *items = PyDict_GetItemWithError(self->avps, name);
    if (items != NULL) {
        *missing = 0;
        return Py_NewRef(items);
    }
    *missing = !PyErr_Occurred();
    return NULL;
}

/* items[0], as Python indexes it (an empty list: IndexError) */
static PyObject *
first(PyObject *items)
{
    if (PyList_CheckExact(items) && PyList_GET_SIZE(items) > 0) {
        return Py_NewRef(PyList_GET_ITEM(items, 0));
    }
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return NULL;
    }
    PyObject *item = PyObject_GetItem(items, zero);
    Py_DECREF(zero);
    return item;
}

/* decoder(items[0]); steals `items` */
static PyObject *
decode_first(PyObject *items, PyObject *decoder)
{
    PyObject *item = first(items);
    Py_DECREF(items);
    if (item == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_CallOneArg(decoder, item);
    Py_DECREF(item);
    return value;
}

PyDoc_STRVAR(found_all_doc, "all(name, /)\n--\n\nThe RawAvps of `name`, an empty list if none.");

static PyObject *
found_all(FoundObject *self, PyObject *name)
{
    int missing;
    PyObject *items = found_get(self, name, &missing);
    return missing ? PyList_New(0) : items;
}

PyDoc_STRVAR(found_one_doc, "one(name, decoder, /)\n--\n\ndecoder(first RawAvp of `name`); KeyError if none.");

static PyObject *
found_one(FoundObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("one", nargs, 2)) {
        return NULL;
    }
    int missing;
    PyObject *items = found_get(self, args[0], &missing);
    if (items == NULL) {
        if (missing) { /* self._avps[name]'s KeyError; a tuple key stays whole, as dict has it */
            PyObject *key = PyTuple_Pack(1, args[0]);
            if (key != NULL) {
                PyErr_SetObject(PyExc_KeyError, key);
                Py_DECREF(key);
            }
        }
        return NULL;
    }
    return decode_first(items, args[1]);
}

PyDoc_STRVAR(found_optional_doc,
"optional(name, decoder, /)\n--\n\ndecoder(first RawAvp of `name`), None if none.");

static PyObject *
found_optional(FoundObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("optional", nargs, 2)) {
        return NULL;
    }
    int missing;
    PyObject *items = found_get(self, args[0], &missing);
    if (items == NULL) {
        return missing ? Py_NewRef(Py_None) : NULL;
    }
    int present = PyList_CheckExact(items) ? PyList_GET_SIZE(items) > 0 : PyObject_IsTrue(items);
    if (present <= 0) {
        Py_DECREF(items);
        return present < 0 ? NULL : Py_NewRef(Py_None);
    }
    return decode_first(items, args[1]);
}

PyDoc_STRVAR(found_many_doc,
"many(name, decoder, /)\n--\n\nA tuple of decoder(RawAvp) for every RawAvp of `name`, in order.");

static PyObject *
found_many(FoundObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("many", nargs, 2)) {
        return NULL;
    }
    PyObject *decoder = args[1];
    int missing;
    PyObject *items = found_get(self, args[0], &missing);
    if (items == NULL) {
        return missing ? PyTuple_New(0) : NULL;
    }
    if (!PyList_CheckExact(items)) { /* the Python method's steps, generically */
        int present = PyObject_IsTrue(items);
        if (present <= 0) {
            Py_DECREF(items);
            return present < 0 ? NULL : PyTuple_New(0);
        }
        PyObject *values = PyList_New(0);
        PyObject *it = values == NULL ? NULL : PyObject_GetIter(items);
        Py_DECREF(items);
        if (it == NULL) {
            Py_XDECREF(values);
            return NULL;
        }
        PyObject *item;
        while ((item = PyIter_Next(it)) != NULL) {
            PyObject *value = PyObject_CallOneArg(decoder, item);
            Py_DECREF(item);
            if (value == NULL || PyList_Append(values, value) < 0) {
                Py_XDECREF(value);
                Py_DECREF(it);
                Py_DECREF(values);
                return NULL;
            }
            Py_DECREF(value);
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            Py_DECREF(values);
            return NULL;
        }
        PyObject *out = PyList_AsTuple(values);
        Py_DECREF(values);
        return out;
    }
    if (PyList_GET_SIZE(items) == 0) {
        Py_DECREF(items);
        return PyTuple_New(0);
    }
    if (PyList_GET_SIZE(items) == 1) {
        PyObject *value = decode_first(items, decoder);
        if (value == NULL) {
            return NULL;
        }
        PyObject *out = PyTuple_New(1);
        if (out == NULL) {
            Py_DECREF(value);
            return NULL;
        }
        PyTuple_SET_ITEM(out, 0, value);
        return out;
    }
    /* decode into a list first, as the comprehension of the Python method does; the decoder may
     * change the list meanwhile, which the comprehension sees, so this loop reads it afresh too */
    PyObject *values = PyList_New(0);
    if (values == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(items, i));
        PyObject *value = PyObject_CallOneArg(decoder, item);
        Py_DECREF(item);
        if (value == NULL || PyList_Append(values, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(values);
            Py_DECREF(items);
            return NULL;
        }
        Py_DECREF(value);
    }
    Py_DECREF(items);
    PyObject *out = PyList_AsTuple(values);
    Py_DECREF(values);
    return out;
}

static PyMethodDef found_methods[] = {
    {"all", (PyCFunction)found_all, METH_O, found_all_doc},
    {"one", (PyCFunction)(void (*)(void))found_one, METH_FASTCALL, found_one_doc},
    {"optional", (PyCFunction)(void (*)(void))found_optional, METH_FASTCALL, found_optional_doc},
    {"many", (PyCFunction)(void (*)(void))found_many, METH_FASTCALL, found_many_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef found_members[] = {
    {"_avps", T_OBJECT_EX, offsetof(FoundObject, avps), READONLY, "name -> RawAvps, only the names that occur"},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(found_doc,
"Found(avps)\n--\n\n"
"The AVPs of one AVP list sorted by grammar name (a dict name -> list of RawAvp), with typed\n"
"accessors: credit_control._PyFound in C.");

static PyType_Slot found_slots[] = {
    {Py_tp_doc, (void *)found_doc},
    {Py_tp_new, found_new},
    {Py_tp_dealloc, found_dealloc},
    {Py_tp_traverse, found_traverse},
    {Py_tp_clear, found_clear},
    {Py_tp_methods, found_methods},
    {Py_tp_members, found_members},
    {0, NULL},
};

static PyType_Spec found_spec = {
    .name = "protocols.diameter._speedups.Found",
    .basicsize = sizeof(FoundObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = found_slots,
};

/* --- Reader: the typed value readers' common case ---------------------------------------------------- */

/* credit_control's _u32, _u64, _enum, _utf8 and _identity read the data of a RawAvp; each takes the
 * common case inline (exact bytes of the right size, valid text) and leaves everything else to the
 * codec's checked decoders.  A Reader does that common case in C and calls `fallback` (the Python
 * reader itself) for everything else, so errors (5014, 5004 with the Failed-AVP) stay Python's.
 * Sizes per RFC 6733 4.2/4.3: Unsigned32 and Enumerated (an Integer32) 4 octets, Unsigned64 8;
 * UTF8String is UTF-8 (4.3.1), DiameterIdentity ASCII. */
enum { R_U32, R_U64, R_I32, R_UTF8, R_ASCII, R_COUNT };
static const char *const READER_KINDS[R_COUNT] = {"u32", "u64", "i32", "utf8", "ascii"};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind;
    PyObject *fallback;
} ReaderObject;

static PyObject *
reader_read(ReaderObject *self, PyObject *item)
{
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) > 3 && PyBytes_CheckExact(PyTuple_GET_ITEM(item, 3))) {
        PyObject *data = PyTuple_GET_ITEM(item, 3);
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
        Py_ssize_t n = PyBytes_GET_SIZE(data);
        switch (self->kind) {
        case R_U32:
            if (n == 4) {
                return PyLong_FromUnsignedLong(be32(p));
            }
            break;
        case R_U64:
            if (n == 8) {
                return PyLong_FromUnsignedLongLong((unsigned long long)be32(p) << 32 | be32(p + 4));
            }
            break;
        case R_I32:
            if (n == 4) {
                return PyLong_FromLong((long)(int32_t)be32(p));
            }
            break;
        case R_UTF8: {
            PyObject *text = PyUnicode_DecodeUTF8((const char *)p, n, NULL); /* bytes.decode("utf-8") */
            if (text != NULL || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                return text;
            }
            PyErr_Clear(); /* not UTF-8: the fallback answers 5004 */
            break;
        }
        case R_ASCII: {
            Py_ssize_t i = 0;
            while (i < n && p[i] < 0x80) {
                i++;
            }
            if (i == n) {
                return PyUnicode_DecodeASCII((const char *)p, n, NULL);
            }
            break;
        }
        default:
            break;
        }
    }
    return PyObject_CallOneArg(self->fallback, item);
}

static PyObject *
reader_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) {
        PyErr_SetString(PyExc_TypeError, "a Reader takes no keyword arguments");
        return NULL;
    }
    if (!check_nargs("Reader", nargs, 1)) {
        return NULL;
    }
    return reader_read((ReaderObject *)self, args[0]);
}

static PyObject *
reader_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    const char *kind;
    PyObject *fallback;
    static char *kwlist[] = {"kind", "fallback", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sO:Reader", kwlist, &kind, &fallback)) {
        return NULL;
    }
    int k = 0;
    while (k < R_COUNT && strcmp(kind, READER_KINDS[k]) != 0) {
        k++;
    }
    if (k == R_COUNT) {
        PyErr_Format(PyExc_ValueError, "unknown Reader kind %R", PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "a Reader's fallback must be callable");
        return NULL;
    }
    ReaderObject *self = (ReaderObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->vectorcall = reader_vectorcall;
        self->kind = k;
        self->fallback = Py_NewRef(fallback);
    }
    return (PyObject *)self;
}

static int
reader_traverse(ReaderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fallback);
    return 0;
}

static int
reader_clear(ReaderObject *self)
{
    Py_CLEAR(self->fallback);
    return 0;
}

static void
reader_dealloc(ReaderObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    reader_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyObject *
reader_get_kind(ReaderObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(READER_KINDS[self->kind]);
}

static PyObject *
reader_repr(ReaderObject *self)
{
    return PyUnicode_FromFormat("Reader(%s, %R)", READER_KINDS[self->kind], self->fallback);
}

static PyGetSetDef reader_getset[] = {
    {"kind", (getter)reader_get_kind, NULL, "u32, u64, i32, utf8 or ascii", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef reader_members[] = {
    {"fallback", T_OBJECT_EX, offsetof(ReaderObject, fallback), READONLY, "the Python reader"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(ReaderObject, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(reader_doc,
"Reader(kind, fallback)\n--\n\n"
"A typed reader of a RawAvp's data: kind u32 / u64 (Unsigned32 / Unsigned64, 4 / 8 octets), i32\n"
"(Enumerated, 4 octets), utf8 (UTF8String) or ascii (DiameterIdentity) for exact bytes of the\n"
"right size and text; fallback(raw) for anything else.");

static PyType_Slot reader_slots[] = {
    {Py_tp_doc, (void *)reader_doc},
    {Py_tp_new, reader_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, reader_dealloc},
    {Py_tp_traverse, reader_traverse},
    {Py_tp_clear, reader_clear},
    {Py_tp_repr, reader_repr},
    {Py_tp_getset, reader_getset},
    {Py_tp_members, reader_members},
    {0, NULL},
};

static PyType_Spec reader_spec = {
    .name = "protocols.diameter._speedups.Reader",
    .basicsize = sizeof(ReaderObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = reader_slots,
};

/* --- module ------------------------------------------------------------------------------------- */

static PyMethodDef speedups_methods[] = {
    {"scan_avps", (PyCFunction)(void (*)(void))scan_avps, METH_FASTCALL, scan_avps_doc},
    {"decode_avps", (PyCFunction)(void (*)(void))decode_avps, METH_FASTCALL, decode_avps_doc},
    {"members", (PyCFunction)(void (*)(void))members, METH_FASTCALL, members_doc},
    {"collect", (PyCFunction)(void (*)(void))collect, METH_FASTCALL, collect_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_traverse(PyObject *module, visitproc visit, void *arg)
{
    speedups_state *st = get_state(module);
    Py_VISIT(st->avp_type);
    for (int i = 0; i < F_COUNT; i++) {
        Py_VISIT(st->descr[i]);
    }
    Py_VISIT(st->found_type);
    Py_VISIT(st->reader_type);
    return 0;
}

static int
speedups_clear(PyObject *module)
{
    speedups_state *st = get_state(module);
    Py_CLEAR(st->avp_type);
    for (int i = 0; i < F_COUNT; i++) {
        Py_CLEAR(st->descr[i]);
    }
    Py_CLEAR(st->found_type);
    Py_CLEAR(st->reader_type);
    return 0;
}

static void
speedups_free(void *module)
{
    speedups_clear((PyObject *)module);
}

static int
speedups_exec(PyObject *module)
{
    speedups_state *st = get_state(module);
    st->found_type = PyType_FromModuleAndSpec(module, &found_spec, NULL);
    if (st->found_type == NULL || PyModule_AddType(module, (PyTypeObject *)st->found_type) < 0) {
        return -1;
    }
    st->reader_type = PyType_FromModuleAndSpec(module, &reader_spec, NULL);
    if (st->reader_type == NULL || PyModule_AddType(module, (PyTypeObject *)st->reader_type) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
    {0, NULL},
};

PyDoc_STRVAR(speedups_doc,
"Optional C accelerator of the Diameter AVP scan (protocols.diameter.codec) and of the grammar\n"
"checks of protocols.diameter.credit_control.\n\n"
"Each function returns None when its input is not the plain valid case; the caller then runs\n"
"the pure-Python reference, which raises the exact error. Set TGW_PURE_PYTHON=1 to ignore it.");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "protocols.diameter._speedups",
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
