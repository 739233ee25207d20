/*
 * Optional C accelerator of the Diameter decode side, and of what a server does per request.
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
 *   UTF8String UTF-8, DiameterIdentity ASCII); an enumeration's reader returns its member.
 * - Maker: a frozen slotted dataclass made as its __init__ makes it, the fields stored in their
 *   slots (codec.record_maker: the typed requests, decode's Messages, the peer's RequestReceived,
 *   the Diameter ingest's UsageEvents).  The class is the reference.
 * - encode_avps / encode_parts: codec.encode_avps (section 4.1, the layout below) of AVPs whose
 *   fields are plain (exact ints in range, exact bytes), with octets encoded already copied in
 *   between for encode_parts (the AVPs credit_control's answers share).
 * - select: the IETF AVPs of a few codes, in order: what credit_control's answers scan a request
 *   for (Session-Id, CC-Request-Type and -Number, Proxy-Info).
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
 * Found, Reader and Maker heap types and the Avp class last passed in with its four slot descriptors
 * (looked up again whenever a call passes another class); everything else is passed in by the
 * caller.  Slots are read and written where their member descriptors (checked to be writable
 * object slots, T_OBJECT_EX, of the instance's class or a base) say, as those descriptors do.
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
    PyObject *maker_type;  /* Maker, likewise */
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

/* The object slot of `obj` that a member descriptor reads and writes: one checked to be a writable
 * T_OBJECT_EX member of a class `obj` is an instance of (lookup_avp_type, slot_descriptor).  Such a
 * descriptor's __set__ on a fresh instance stores the new reference there and its __get__ reads it
 * (NULL: unset, its AttributeError), which is all this module does through it. */
static inline PyObject **
slot_of(PyObject *obj, PyObject *descr)
{
    return (PyObject **)((char *)obj + ((PyMemberDescrObject *)descr)->d_member->offset);
}

/* A new Avp of the state's class from a read AVP, made as codec.py makes the decoder's: allocated
 * without __init__ (whose only extra is the vendor_id check, true by construction here) and each
 * field stored in its slot as its slot descriptor does, which bypasses the frozen dataclass's
 * __setattr__. */
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
        *slot_of(item, cls->descr[i]) = values[i]; /* steals; the slot of a fresh instance is NULL */
        values[i] = NULL;
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
 * out[], read from their slots as the slot descriptors read them; 1, or 0 when a field is unset
 * (Python raises the AttributeError) or of a type other than the decoder makes for code, flags and
 * vendor_id (exact ints; vendor_id may be None).  `data` is taken as it is: collect only carries it
 * along.  (Never -1: the callers still handle it.) */
static int
avp_fields(const avp_class *cls, PyObject *item, PyObject *out[F_COUNT])
{
    for (int i = 0; i < F_COUNT; i++) {
        PyObject *value = *slot_of(item, cls->descr[i]);
        if (value == NULL) { /* unset: Python's __get__ raises the AttributeError */
            for (int j = 0; j < i; j++) {
                Py_CLEAR(out[j]);
            }
            return 0;
        }
        out[i] = Py_NewRef(value);
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


/* --- encode_avps ---------------------------------------------------------------------------------- */

/* An exact int in [0, limit] as *out; 0 for anything else (the caller returns None). */
static int
exact_uint(PyObject *value, unsigned long long limit, unsigned long long *out)
{
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || v < 0 || (unsigned long long)v > limit) {
        return 0; /* (-1 with an error cannot happen for an exact int) */
    }
    *out = (unsigned long long)v;
    return 1;
}

static inline void
put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

PyDoc_STRVAR(encode_avps_doc,
"encode_avps(avps, avp_class, /)\n--\n\n"
"codec.encode_avps of a tuple or list of avp_class instances: each AVP's header (with a Vendor-ID\n"
"when vendor_id is not None), data and zero padding, one after the other; None when an AVP is not\n"
"an exact avp_class with an exact int code < 2**32, flags < 256, vendor_id None or < 2**32 and\n"
"exact bytes data short enough for the AVP Length (Python then encodes it, or names the fault).");

typedef struct {
    uint32_t code, flags_length, vendor_id;
    int vendor_present;
    int raw;          /* an item of encode_parts that is octets already: copied as they are */
    const char *data; /* borrowed: the Avp holds its bytes, the items tuple holds the Avp */
    Py_ssize_t size, padded;
} avp_out;

/* encode_avps and encode_parts: `parts` says whether exact bytes items are taken as encoded octets */
static PyObject *
encode_run(PyObject *module, PyObject *const *args, int parts)
{
    PyObject *avps = args[0];
    if (!PyTuple_CheckExact(avps) && !PyList_CheckExact(avps)) {
        Py_RETURN_NONE;
    }
    avp_class cls;
    int usable = use_avp_type(get_state(module), args[1], &cls);
    if (usable <= 0) {
        return usable < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *items = PySequence_Tuple(avps); /* a list could change under us: a tuple cannot */
    if (items == NULL) {
        release_avp_class(&cls);
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    avp_out small[16];
    avp_out *outs = count <= 16 ? small : PyMem_New(avp_out, (size_t)count);
    PyObject *out = NULL;
    if (outs == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    Py_ssize_t size = 0;
    /* pass 1: read and check every AVP, add up the octets */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        avp_out *o = &outs[i];
        if (parts && PyBytes_CheckExact(item)) { /* the items tuple holds it */
            o->raw = 1;
            o->data = PyBytes_AS_STRING(item);
            o->size = o->padded = PyBytes_GET_SIZE(item);
            size += o->size;
            if (size > PY_SSIZE_T_MAX / 2) {
                goto decline;
            }
            continue;
        }
        o->raw = 0;
        if (!Py_IS_TYPE(item, cls.type)) {
            goto decline;
        }
        PyObject *field[F_COUNT];
        int rc = avp_fields(&cls, item, field);
        if (rc <= 0) {
            if (rc < 0) {
                goto error;
            }
            goto decline;
        }
        unsigned long long code, flags, vendor = 0;
        o->vendor_present = field[F_VENDOR_ID] != Py_None;
        int ok = exact_uint(field[F_CODE], 0xFFFFFFFFULL, &code) && exact_uint(field[F_FLAGS], 0xFF, &flags) &&
                 (!o->vendor_present || exact_uint(field[F_VENDOR_ID], 0xFFFFFFFFULL, &vendor)) &&
                 PyBytes_CheckExact(field[F_DATA]);
        if (ok) {
            Py_ssize_t length = PyBytes_GET_SIZE(field[F_DATA]) + (o->vendor_present ? AVP_VENDOR_HEADER : AVP_HEADER);
            ok = length <= 0xFFFFFF;
            o->code = (uint32_t)code;
            o->flags_length = (uint32_t)(flags << 24 | (unsigned long long)length);
            o->vendor_id = (uint32_t)vendor;
            o->data = PyBytes_AS_STRING(field[F_DATA]);
            o->size = PyBytes_GET_SIZE(field[F_DATA]);
            o->padded = (length + 3) & ~(Py_ssize_t)3;
            size += o->padded; /* each under 2**24 + 4 */
        }
        /* the item holds data, and nothing runs Python code before it is copied below */
        for (int j = 0; j < F_COUNT; j++) {
            Py_DECREF(field[j]);
        }
        if (!ok || size > PY_SSIZE_T_MAX / 2) {
            goto decline;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) {
        goto error;
    }
    /* pass 2: header, [Vendor-ID], data, zero padding */
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < count; i++) {
        const avp_out *o = &outs[i];
        if (o->raw) {
            memcpy(p, o->data, (size_t)o->size);
            p += o->size;
            continue;
        }
        Py_ssize_t header = o->vendor_present ? AVP_VENDOR_HEADER : AVP_HEADER;
        put_be32(p, o->code);
        put_be32(p + 4, o->flags_length);
        if (o->vendor_present) {
            put_be32(p + 8, o->vendor_id);
        }
        memcpy(p + header, o->data, (size_t)o->size);
        memset(p + header + o->size, 0, (size_t)(o->padded - header - o->size));
        p += o->padded;
    }
    goto done;

decline:
    out = Py_NewRef(Py_None);
    goto done;
error:
    out = NULL;
done:
    if (outs != small) {
        PyMem_Free(outs);
    }
    Py_DECREF(items);
    release_avp_class(&cls);
    return out;
}

static PyObject *
encode_avps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("encode_avps", nargs, 2)) {
        return NULL;
    }
    return encode_run(module, args, 0);
}

PyDoc_STRVAR(encode_parts_doc,
"encode_parts(parts, avp_class, /)\n--\n\n"
"encode_avps where an item may also be exact bytes, octets encoded already (AVPs answers share),\n"
"copied as they are: codec._encode_parts.");

static PyObject *
encode_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("encode_parts", nargs, 2)) {
        return NULL;
    }
    return encode_run(module, args, 1);
}


/* --- select: the AVPs an answer echoes ------------------------------------------------------------- */

PyDoc_STRVAR(select_doc,
"select(avps, avp_class, codes, /)\n--\n\n"
"The AVPs of the tuple or list `avps` whose vendor_id is None and whose code is one of `codes` (a\n"
"tuple of ints), in order, as a list; None when an AVP is not an exact avp_class with an exact int\n"
"code (or a slot is unset), or `codes` is not a tuple of exact ints.  credit_control's answers\n"
"scan the request for what they echo; this leaves them the few AVPs that can matter.");

static PyObject *
select_avps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("select", nargs, 3)) {
        return NULL;
    }
    PyObject *avps = args[0], *codes_obj = args[2];
    if ((!PyTuple_CheckExact(avps) && !PyList_CheckExact(avps)) || !PyTuple_CheckExact(codes_obj) ||
        PyTuple_GET_SIZE(codes_obj) > 8) {
        Py_RETURN_NONE;
    }
    long codes[8];
    Py_ssize_t ncodes = PyTuple_GET_SIZE(codes_obj);
    for (Py_ssize_t j = 0; j < ncodes; j++) {
        PyObject *code = PyTuple_GET_ITEM(codes_obj, j);
        int overflow;
        codes[j] = PyLong_CheckExact(code) ? PyLong_AsLongAndOverflow(code, &overflow) : -1;
        if (!PyLong_CheckExact(code) || overflow || codes[j] < 0) {
            Py_RETURN_NONE;
        }
    }
    avp_class cls;
    int usable = use_avp_type(get_state(module), args[1], &cls);
    if (usable <= 0) {
        return usable < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *items = PySequence_Tuple(avps); /* a list could change under us: a tuple cannot */
    PyObject *out = items == NULL ? NULL : PyList_New(0);
    if (out == NULL) {
        Py_XDECREF(items);
        release_avp_class(&cls);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (!Py_IS_TYPE(item, cls.type)) {
            goto decline;
        }
        PyObject *code = *slot_of(item, cls.descr[F_CODE]);
        PyObject *vendor = *slot_of(item, cls.descr[F_VENDOR_ID]);
        if (code == NULL || vendor == NULL || !PyLong_CheckExact(code)) {
            goto decline; /* unset (Python's AttributeError), or a code compared otherwise */
        }
        if (vendor != Py_None) {
            continue;
        }
        int overflow;
        long value = PyLong_AsLongAndOverflow(code, &overflow);
        for (Py_ssize_t j = 0; !overflow && j < ncodes; j++) {
            if (value == codes[j]) {
                if (PyList_Append(out, item) < 0) {
                    goto error;
                }
                break;
            }
        }
    }
    Py_DECREF(items);
    release_avp_class(&cls);
    return out;

decline:
    Py_DECREF(out);
    Py_DECREF(items);
    release_avp_class(&cls);
    Py_RETURN_NONE;
error:
    Py_DECREF(out);
    Py_DECREF(items);
    release_avp_class(&cls);
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
    PyObject *members; /* NULL, or an exact dict value -> what to return (an enum's _value2member_map_) */
} ReaderObject;

/* An integer reader's value as its `members` name it: the member (new reference), or NULL without an
 * exception when there is none (the fallback then decides: an enum of unknown values makes one), or
 * NULL with an exception.  Steals `value`. */
static PyObject *
reader_member(ReaderObject *self, PyObject *value, int *missing)
{
    *missing = 0;
    if (value == NULL || self->members == NULL) {
        return value;
    }
    PyObject *member = PyDict_GetItemWithError(self->members, value); /* an exact int key: no Python code */
    Py_DECREF(value);
    if (member == NULL) {
        *missing = !PyErr_Occurred();
        return NULL;
    }
    return Py_NewRef(member);
}

static PyObject *
reader_read(ReaderObject *self, PyObject *item)
{
    int missing = 0;
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) > 3 && PyBytes_CheckExact(PyTuple_GET_ITEM(item, 3))) {
        PyObject *data = PyTuple_GET_ITEM(item, 3);
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
        Py_ssize_t n = PyBytes_GET_SIZE(data);
        switch (self->kind) {
        case R_U32:
            if (n == 4) {
                PyObject *value = reader_member(self, PyLong_FromUnsignedLong(be32(p)), &missing);
                if (!missing) {
                    return value;
                }
            }
            break;
        case R_U64:
            if (n == 8) {
                PyObject *value = reader_member(
                    self, PyLong_FromUnsignedLongLong((unsigned long long)be32(p) << 32 | be32(p + 4)), &missing);
                if (!missing) {
                    return value;
                }
            }
            break;
        case R_I32:
            if (n == 4) {
                PyObject *value = reader_member(self, PyLong_FromLong((long)(int32_t)be32(p)), &missing);
                if (!missing) {
                    return value;
                }
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
    PyObject *members = Py_None;
    static char *kwlist[] = {"kind", "fallback", "members", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sO|O:Reader", kwlist, &kind, &fallback, &members)) {
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
    if (members != Py_None && (!PyDict_CheckExact(members) || !(k == R_U32 || k == R_U64 || k == R_I32))) {
        PyErr_SetString(PyExc_TypeError, "a Reader's members must be None or a dict, for u32, u64 or i32");
        return NULL;
    }
    ReaderObject *self = (ReaderObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->vectorcall = reader_vectorcall;
        self->kind = k;
        self->fallback = Py_NewRef(fallback);
        self->members = members == Py_None ? NULL : Py_NewRef(members);
    }
    return (PyObject *)self;
}

static int
reader_traverse(ReaderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fallback);
    Py_VISIT(self->members);
    return 0;
}

static int
reader_clear(ReaderObject *self)
{
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->members);
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
    {"members", T_OBJECT, offsetof(ReaderObject, members), READONLY, "value -> member, or None"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(ReaderObject, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(reader_doc,
"Reader(kind, fallback, members=None)\n--\n\n"
"A typed reader of a RawAvp's data: kind u32 / u64 (Unsigned32 / Unsigned64, 4 / 8 octets), i32\n"
"(Enumerated, 4 octets), utf8 (UTF8String) or ascii (DiameterIdentity) for exact bytes of the\n"
"right size and text; fallback(raw) for anything else.  With members (a dict, for the integer\n"
"kinds), members[value], and fallback(raw) for a value it lacks.");

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


/* --- Maker: a dataclass's __init__ through its slots ------------------------------------------------- */

/* The frozen slotted dataclasses of credit_control.py (the typed requests and their Grouped AVPs) and
 * campaign_core's UsageEvent are made tens of times per request.  Their generated __init__ assigns
 * each field through object.__setattr__ (frozen: their own __setattr__ raises), which is the slot's
 * member descriptor in the end, at some 0.2 us a field.  A Maker takes the same arguments as the
 * class (positional for the fields that are not keyword-only, keywords, defaults for the ones left
 * out) and makes the instance as object.__new__ does (tp_alloc) with each field set through its slot
 * descriptor, in C: what __init__ ends up doing, without its frames.  codec.record_maker builds one
 * only for a class whose __init__ does nothing else (a dataclass without __post_init__ or
 * default_factory, object.__new__ its __new__), and hands out the class itself without the
 * extension: the class is the reference. */
#define MAKER_MAX_FIELDS 32

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyTypeObject *cls;
    Py_ssize_t count;      /* fields, in __init__'s order */
    Py_ssize_t positional; /* the first `positional` may come positionally */
    PyObject *names;       /* tuple of exact str */
    PyObject *descrs;      /* tuple of the fields' member descriptors */
    PyObject *defaults[MAKER_MAX_FIELDS]; /* NULL: required */
} MakerObject;

/* The field named by `kw` (an exact str, as CPython passes keyword names): its index, or -1.  The
 * names are usually the very objects of the caller's code (interned), so identity is tried first. */
static Py_ssize_t
maker_field(const MakerObject *self, PyObject *kw, Py_ssize_t guess)
{
    if (guess < self->count && PyTuple_GET_ITEM(self->names, guess) == kw) {
        return guess;
    }
    for (Py_ssize_t i = 0; i < self->count; i++) {
        if (PyTuple_GET_ITEM(self->names, i) == kw) {
            return i;
        }
    }
    if (!PyUnicode_Check(kw)) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->count; i++) {
        if (PyUnicode_Compare(PyTuple_GET_ITEM(self->names, i), kw) == 0) {
            return i;
        }
    }
    return -1; /* PyUnicode_Compare of two str cannot fail */
}

static PyObject *
maker_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MakerObject *self = (MakerObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (self->cls == NULL) { /* cleared by the cycle collector (a finalizer may still call it) */
        PyErr_SetString(PyExc_TypeError, "this Maker was cleared");
        return NULL;
    }
    const char *cls_name = self->cls->tp_name;
    if (nargs > self->positional) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments but %zd were given", cls_name,
                     self->positional, nargs);
        return NULL;
    }
    PyObject *values[MAKER_MAX_FIELDS] = {NULL}; /* borrowed: the caller's arguments, or defaults */
    for (Py_ssize_t i = 0; i < nargs; i++) {
        values[i] = args[i];
    }
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, j);
        Py_ssize_t i = maker_field(self, kw, nargs + j);
        if (i < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", cls_name, kw);
            return NULL;
        }
        if (values[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%S'", cls_name, kw);
            return NULL;
        }
        values[i] = args[nargs + j];
    }
    for (Py_ssize_t i = 0; i < self->count; i++) {
        if (values[i] == NULL) {
            values[i] = self->defaults[i];
            if (values[i] == NULL) {
                PyErr_Format(PyExc_TypeError, "%s() missing required argument '%S'", cls_name,
                             PyTuple_GET_ITEM(self->names, i));
                return NULL;
            }
        }
    }
    PyObject *item = self->cls->tp_alloc(self->cls, 0);
    if (item == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->count; i++) { /* as the slot descriptor's __set__ stores it */
        *slot_of(item, PyTuple_GET_ITEM(self->descrs, i)) = Py_NewRef(values[i]);
    }
    return item;
}

/* The member descriptor of field `name` of `cls`, found along the MRO as attribute lookup finds it:
 * a new reference, or NULL with TypeError when it is not a writable object slot (T_OBJECT_EX) of a
 * class `cls` derives from. */
static PyObject *
slot_descriptor(PyTypeObject *cls, PyObject *name)
{
    PyObject *mro = cls->tp_mro;
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyObject *dict = PyObject_GetAttrString(PyTuple_GET_ITEM(mro, i), "__dict__");
        if (dict == NULL) {
            return NULL;
        }
        PyObject *descr = PyObject_GetItem(dict, name);
        Py_DECREF(dict);
        if (descr == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                return NULL;
            }
            PyErr_Clear();
            continue;
        }
        if (Py_IS_TYPE(descr, &PyMemberDescr_Type) && PyType_IsSubtype(cls, PyDescr_TYPE(descr)) &&
            ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
            !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY)) {
            return descr;
        }
        Py_DECREF(descr);
        break;
    }
    PyErr_Format(PyExc_TypeError, "%s.%S is not a writable slot", cls->tp_name, name);
    return NULL;
}

static PyObject *
maker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *cls, *names, *defaults;
    Py_ssize_t positional;
    static char *kwlist[] = {"cls", "names", "positional", "defaults", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!nO!:Maker", kwlist, &PyType_Type, &cls, &PyTuple_Type,
                                     &names, &positional, &PyDict_Type, &defaults)) {
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    /* instances made as object.__new__ makes them: tp_alloc, nothing else */
    if (tp->tp_new != PyBaseObject_Type.tp_new || tp->tp_alloc == NULL ||
        PyType_HasFeature(tp, Py_TPFLAGS_IS_ABSTRACT)) {
        PyErr_Format(PyExc_TypeError, "Maker: %s is not made by object.__new__", tp->tp_name);
        return NULL;
    }
    if (count > MAKER_MAX_FIELDS || positional < 0 || positional > count) {
        PyErr_SetString(PyExc_ValueError, "Maker: too many fields, or positional out of range");
        return NULL;
    }
    PyObject *descrs = PyTuple_New(count);
    if (descrs == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(name)) {
            PyErr_SetString(PyExc_TypeError, "Maker: field names must be str");
            Py_DECREF(descrs);
            return NULL;
        }
        PyObject *descr = slot_descriptor(tp, name);
        if (descr == NULL) {
            Py_DECREF(descrs);
            return NULL;
        }
        PyTuple_SET_ITEM(descrs, i, descr);
    }
    MakerObject *self = (MakerObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(descrs);
        return NULL;
    }
    self->vectorcall = maker_vectorcall;
    self->cls = (PyTypeObject *)Py_NewRef(cls);
    self->count = count;
    self->positional = positional;
    self->names = Py_NewRef(names);
    self->descrs = descrs;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = PyDict_GetItemWithError(defaults, PyTuple_GET_ITEM(names, i));
        if (value == NULL && PyErr_Occurred()) {
            Py_DECREF(self);
            return NULL;
        }
        self->defaults[i] = Py_XNewRef(value);
    }
    return (PyObject *)self;
}

static int
maker_traverse(MakerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->cls);
    Py_VISIT(self->names);
    Py_VISIT(self->descrs);
    for (Py_ssize_t i = 0; i < self->count; i++) {
        Py_VISIT(self->defaults[i]);
    }
    return 0;
}

static int
maker_clear(MakerObject *self)
{
    Py_CLEAR(self->cls);
    Py_CLEAR(self->names);
    Py_CLEAR(self->descrs);
    for (Py_ssize_t i = 0; i < MAKER_MAX_FIELDS; i++) {
        Py_CLEAR(self->defaults[i]);
    }
    self->count = 0;
    self->positional = 0;
    return 0;
}

static void
maker_dealloc(MakerObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    maker_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyObject *
maker_get_names(MakerObject *self, void *closure)
{
    (void)closure;
    return self->names == NULL ? PyTuple_New(0) : Py_NewRef(self->names);
}

static PyObject *
maker_repr(MakerObject *self)
{
    return PyUnicode_FromFormat("Maker(%R)", self->cls == NULL ? Py_None : (PyObject *)self->cls);
}

static PyGetSetDef maker_getset[] = {
    {"names", (getter)maker_get_names, NULL, "the fields, in __init__'s order", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef maker_members[] = {
    {"cls", T_OBJECT, offsetof(MakerObject, cls), READONLY, "the class made"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(MakerObject, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(maker_doc,
"Maker(cls, names, positional, defaults)\n--\n\n"
"Makes instances of the slotted class cls as its dataclass __init__ does, through the slots: names\n"
"are the fields in __init__'s order, the first `positional` of them may be passed positionally,\n"
"defaults maps the names of those that may be left out to their default.");

static PyType_Slot maker_slots[] = {
    {Py_tp_doc, (void *)maker_doc},
    {Py_tp_new, maker_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, maker_dealloc},
    {Py_tp_traverse, maker_traverse},
    {Py_tp_clear, maker_clear},
    {Py_tp_repr, maker_repr},
    {Py_tp_getset, maker_getset},
    {Py_tp_members, maker_members},
    {0, NULL},
};

static PyType_Spec maker_spec = {
    .name = "protocols.diameter._speedups.Maker",
    .basicsize = sizeof(MakerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = maker_slots,
};

/* --- module ------------------------------------------------------------------------------------- */

static PyMethodDef speedups_methods[] = {
    {"scan_avps", (PyCFunction)(void (*)(void))scan_avps, METH_FASTCALL, scan_avps_doc},
    {"decode_avps", (PyCFunction)(void (*)(void))decode_avps, METH_FASTCALL, decode_avps_doc},
    {"members", (PyCFunction)(void (*)(void))members, METH_FASTCALL, members_doc},
    {"collect", (PyCFunction)(void (*)(void))collect, METH_FASTCALL, collect_doc},
    {"encode_avps", (PyCFunction)(void (*)(void))encode_avps, METH_FASTCALL, encode_avps_doc},
    {"encode_parts", (PyCFunction)(void (*)(void))encode_parts, METH_FASTCALL, encode_parts_doc},
    {"select", (PyCFunction)(void (*)(void))select_avps, METH_FASTCALL, select_doc},
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
    Py_VISIT(st->maker_type);
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
    Py_CLEAR(st->maker_type);
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
    st->maker_type = PyType_FromModuleAndSpec(module, &maker_spec, NULL);
    if (st->maker_type == NULL || PyModule_AddType(module, (PyTypeObject *)st->maker_type) < 0) {
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
