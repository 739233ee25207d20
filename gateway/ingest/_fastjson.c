/*
 * Optional C fast path of the DPI event JSON lines of gateway/ingest/schema.py: one JSON object
 * (RFC 8259 section 4) per line, its names and values (section 2 grammar and whitespace, section 6
 * numbers, section 7 strings) checked against the field rules of schema.py's module docstring and
 * turned straight into campaign_core.usage.UsageEvent.
 *
 * schema.py's pydantic-core validators stay the reference and the only place that reports faults:
 * parse_lines walks the lines of a body (split at \n as schema.py splits them, without an object per
 * line), takes the lines it is sure about and stops at the first one it is not; the caller runs that
 * line through pydantic, which takes it or says what is wrong, and calls parse_lines again for the
 * rest.  So this file never has to name a fault, and anything off the plain case is declined:
 *
 *   - names and strings that are not printable ASCII (0x20..0x7E) without escapes: escapes,
 *     control characters and UTF-8 are pydantic's to check and decode;
 *   - a name met twice (pydantic keeps the last value);
 *   - an object or array as a value, even of an unknown field (pydantic ignores it, but checking
 *     it would take a whole JSON parser here);
 *   - a minus sign in a known numeric field (only -0 and -0.0 pass pydantic, and there -0 gives
 *     0.0 where strtod gives -0.0), a timestamp string (RFC 3339: pydantic parses it), integers of
 *     more than 18 digits (past a C long long), number tokens of more than 64 characters
 *     (pydantic's parser refuses integers past 4300 digits; a DPI never sends such tokens);
 *   - NaN and Infinity (pydantic's parser reads them, RFC 8259 has no such numbers).
 *
 * What it takes gives the very UsageEvent pydantic's direct validator gives: the same values of the
 * same types, floats rounded correctly from the exact token (pydantic's parser rounds correctly too;
 * see exact_double and parse_float), the UsageKind member itself, the computed percent by Python's
 * own int division.  tests/ingest/test_fastjson.py checks it against pydantic.
 *
 * The event is a frozen slots dataclass: it is allocated with tp_alloc and its slots are set
 * through their member descriptors, bypassing the frozen __setattr__ and the Python __init__ (they
 * would check nothing more).  The descriptors are looked up once and kept in the module state
 * (PEP 489 multi-phase init) with the class they belong to; the module has no other state.  The
 * events are left out of the cycle collector (build_event says why).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_OBJECT_EX and READONLY, to check the descriptors of the slots */
#include <float.h>        /* FLT_EVAL_METHOD */
#include <string.h>

#define ID_MAX 256          /* event_id, package_id: 1..256 characters */
#define PERIOD_MAX 128      /* period: 1..128 characters */
#define MSISDN_MIN 5        /* E.164 digits, without the optional leading + */
#define MSISDN_MAX 15
#define COUNT_DIGITS_MAX 18 /* any 18-digit integer fits a long long */
#define NUMBER_MAX 64       /* longest number token taken, in characters */
#define UNKNOWN_MAX 16      /* unknown names remembered to find duplicates; more: declined */
#define EPOCH_SECONDS_LIMIT 1e11
#define PERCENT_MAX 100.0

/* UsageEvent's fields, in the order of dataclasses.fields(UsageEvent) */
enum {
    F_EVENT_ID, F_MSISDN, F_KIND, F_PACKAGE_ID, F_EVENT_TIME, F_SOURCE, F_SEQUENCE, F_USED_BYTES,
    F_QUOTA_BYTES, F_PERCENT, F_PERIOD, F_COUNT
};

static const char *const FIELD_NAMES[F_COUNT] = {
    "event_id", "msisdn", "kind", "package_id", "event_time", "source", "sequence", "used_bytes",
    "quota_bytes", "percent", "period",
};

/* the fields that must be in the JSON object (event_time as "timestamp") */
#define REQUIRED \
    ((1u << F_EVENT_ID) | (1u << F_MSISDN) | (1u << F_KIND) | (1u << F_PACKAGE_ID) | (1u << F_EVENT_TIME))

typedef struct {
    PyObject *cls;              /* the class whose descriptors are below, or NULL */
    PyObject *descrs[F_COUNT];  /* its member descriptors, in field order */
    PyObject *hundred;          /* the int 100, for the computed percent */
} fastjson_state;

static inline fastjson_state *
get_state(PyObject *module)
{
    return (fastjson_state *)PyModule_GetState(module);
}

/* --- the parser ---------------------------------------------------------------------------------- */

typedef struct {
    const char *ptr;
    Py_ssize_t len;
} span;

/* what one line holds, before any Python object is made (a declined line costs no allocation) */
typedef struct {
    unsigned seen;             /* a bit per field (F_*) met in the object */
    span event_id, msisdn, package_id, period; /* msisdn without its +; period.ptr NULL: null */
    PyObject *kind;            /* borrowed from `kinds` */
    double event_time;
    double percent;
    int has_percent;           /* 0: null (or absent) */
    long long counts[3];       /* sequence, used_bytes, quota_bytes */
    int has_count[3];          /* 0: null (or absent) */
} line_values;

enum { DECLINED = 0, EVENT = 1, BLANK = 2, FAILED = -1 };

/* RFC 8259 section 2: insignificant whitespace.  Not \v nor \f: bytes.isspace() takes them, so a
 * line of them is blank to schema.py but is declined here and found blank there. */
static inline const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

/* The string (section 7) whose opening quote is at p: its characters in *out, and the position
 * after the closing quote; NULL if it holds anything but printable ASCII without escapes. */
static inline const char *
scan_string(const char *p, const char *end, span *out)
{
    const char *start = ++p;
    while (p < end && *p != '"') {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E || *p == '\\') {
            return NULL;
        }
        p++;
    }
    if (p >= end) {
        return NULL;
    }
    out->ptr = start;
    out->len = p - start;
    return p + 1;
}

static inline int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The end of the number (section 6) at p, or NULL if there is none; *integer says whether it has
 * neither fraction nor exponent.  What follows it is checked by the caller (a delimiter must). */
static const char *
scan_number(const char *p, const char *end, int *integer)
{
    const char *q = p;
    if (q < end && *q == '-') {
        q++;
    }
    if (q >= end || !is_digit(*q)) {
        return NULL;
    }
    if (*q++ != '0') { /* no leading zeros: "01" ends after the 0, and the 1 is then refused */
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    *integer = 1;
    if (q < end && *q == '.') {
        q++;
        if (q >= end || !is_digit(*q)) {
            return NULL;
        }
        while (q < end && is_digit(*q)) {
            q++;
        }
        *integer = 0;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) {
            q++;
        }
        if (q >= end || !is_digit(*q)) {
            return NULL;
        }
        while (q < end && is_digit(*q)) {
            q++;
        }
        *integer = 0;
    }
    return q;
}

/* 10**0 .. 10**22: every one exactly a double (5**22 < 2**53) */
static const double POW10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};
#define POW10_MAX 22
#define EXACT_DIGITS 15 /* any 15-digit integer is exactly a double */

/* The double of the number token p..q (checked by scan_number, no minus sign) when it is exactly
 * the product or quotient of two doubles: at most 15 digits and a power of ten up to 10**22.  One
 * IEEE operation rounds correctly, so this is the value correct rounding of the token gives (dtoa's
 * own first case).  Returns 0 for other tokens.  Saves PyOS_string_to_double, which on x86 sets and
 * restores the x87 control word around every call: a fifth of the time of a bench line in perf. */
static int
exact_double(const char *p, const char *q, double *value)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0 /* double operations round to double */
    unsigned long long mantissa = 0; /* unsigned: wraps, harmlessly, on the tokens given up below */
    int digits = 0, exponent = 0;
    for (; p < q && is_digit(*p); p++, digits++) {
        mantissa = mantissa * 10 + (unsigned)(*p - '0');
    }
    if (p < q && *p == '.') {
        for (p++; p < q && is_digit(*p); p++, digits++, exponent--) {
            mantissa = mantissa * 10 + (unsigned)(*p - '0');
        }
    }
    if (digits > EXACT_DIGITS) { /* leading zeros counted too: such tokens are dtoa's */
        return 0;
    }
    if (p < q) { /* the exponent: [eE][+-]?[0-9]+ */
        p++;
        int negative = *p == '-';
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (q - p > 3) {
            return 0;
        }
        int e = 0;
        for (; p < q; p++) {
            e = e * 10 + (*p - '0');
        }
        exponent += negative ? -e : e;
    }
    if (exponent < -POW10_MAX || exponent > POW10_MAX) {
        return 0;
    }
    double d = (double)mantissa;
    *value = exponent >= 0 ? d * POW10[exponent] : d / POW10[-exponent];
    return 1;
#else
    (void)p;
    (void)q;
    (void)value;
    return 0;
#endif
}

/* A non-negative number token at p (no minus sign: see the file comment) as a double, in *value.
 * Returns the end of the token, p itself when not taken, or NULL with an exception set (dtoa may
 * run out of memory).  Pydantic's float accepts integer tokens too, giving their float. */
static const char *
parse_float(const char *p, const char *end, double *value)
{
    int integer;
    const char *q = scan_number(p, end, &integer);
    if (q == NULL || *p == '-' || q - p > NUMBER_MAX) {
        return p;
    }
    if (exact_double(p, q, value)) {
        return q;
    }
    char *stop;
    /* dtoa stops where the token stops: what follows it is never part of a number */
    double v = PyOS_string_to_double(p, &stop, NULL);
    if (v == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (stop != q) {
        return p;
    }
    *value = v;
    return q;
}

/* A non-negative integer token of at most COUNT_DIGITS_MAX digits at p, in *value; returns its end,
 * or p when not taken (pydantic's strict int refuses 5.0 and 5e0, which are declined here). */
static const char *
parse_count(const char *p, const char *end, long long *value)
{
    int integer;
    const char *q = scan_number(p, end, &integer);
    if (q == NULL || *p == '-' || !integer || q - p > COUNT_DIGITS_MAX) {
        return p;
    }
    long long v = 0;
    for (const char *d = p; d < q; d++) {
        v = v * 10 + (*d - '0');
    }
    *value = v;
    return q;
}

/* p at a literal (true, false, null): its end, or p if it is not `word` */
static inline const char *
scan_literal(const char *p, const char *end, const char *word, Py_ssize_t len)
{
    return end - p >= len && memcmp(p, word, (size_t)len) == 0 ? p + len : p;
}

/* The field a name stands for, F_COUNT for an unknown one.  "event_time" and "source" are names
 * of UsageEvent but not of the JSON object: there they are unknown fields, which pydantic ignores. */
static int
field_of(span name)
{
#define IS(text) (memcmp(name.ptr, text, sizeof(text) - 1) == 0)
    switch (name.len) {
    case 4:
        return IS("kind") ? F_KIND : F_COUNT;
    case 6:
        return IS("msisdn") ? F_MSISDN : IS("period") ? F_PERIOD : F_COUNT;
    case 7:
        return IS("percent") ? F_PERCENT : F_COUNT;
    case 8:
        return IS("event_id") ? F_EVENT_ID : IS("sequence") ? F_SEQUENCE : F_COUNT;
    case 9:
        return IS("timestamp") ? F_EVENT_TIME : F_COUNT;
    case 10:
        return IS("package_id") ? F_PACKAGE_ID : IS("used_bytes") ? F_USED_BYTES : F_COUNT;
    case 11:
        return IS("quota_bytes") ? F_QUOTA_BYTES : F_COUNT;
    default:
        return F_COUNT;
    }
#undef IS
}

/* The member of `kinds` (bytes value -> UsageKind member) named by s, borrowed; NULL if none. */
static PyObject *
kind_of(PyObject *kinds, span s)
{
    Py_ssize_t pos = 0;
    PyObject *key, *member;
    while (PyDict_Next(kinds, &pos, &key, &member)) {
        /* checked by parse_lines, and again here: a finalizer could have changed the dict since */
        if (PyBytes_Check(key) && PyBytes_GET_SIZE(key) == s.len
            && memcmp(PyBytes_AS_STRING(key), s.ptr, (size_t)s.len) == 0) {
            return member;
        }
    }
    return NULL;
}

/* An unknown field's value: a scalar (string, number, true, false, null).  Returns its end, or p
 * when declined (an object, an array, anything else). */
static const char *
skip_scalar(const char *p, const char *end)
{
    span ignored;
    int integer;
    const char *q;
    switch (*p) {
    case '"':
        q = scan_string(p, end, &ignored);
        return q == NULL ? p : q;
    case 't':
        return scan_literal(p, end, "true", 4);
    case 'f':
        return scan_literal(p, end, "false", 5);
    case 'n':
        return scan_literal(p, end, "null", 4);
    default:
        q = scan_number(p, end, &integer);
        return q == NULL || q - p > NUMBER_MAX ? p : q;
    }
}

/* Parse one line into *v.  Returns EVENT, BLANK (nothing but whitespace), DECLINED or FAILED. */
static int
parse_line(const char *p, const char *end, PyObject *kinds, line_values *v)
{
    span unknown[UNKNOWN_MAX];
    int unknowns = 0;

    p = skip_ws(p, end);
    if (p == end) {
        return BLANK;
    }
    if (*p != '{') {
        return DECLINED;
    }
    p = skip_ws(p + 1, end);
    v->seen = 0;
    v->period.ptr = NULL;
    v->has_percent = 0;
    v->has_count[0] = v->has_count[1] = v->has_count[2] = 0;
    if (p < end && *p == '}') {
        return DECLINED; /* {}: the required fields are missing */
    }
    for (;;) {
        span name;
        if (p >= end || *p != '"' || (p = scan_string(p, end, &name)) == NULL) {
            return DECLINED;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ':') {
            return DECLINED;
        }
        p = skip_ws(p + 1, end);
        if (p >= end) {
            return DECLINED;
        }
        int field = field_of(name);
        if (field == F_COUNT) {
            for (int i = 0; i < unknowns; i++) {
                if (unknown[i].len == name.len
                    && memcmp(unknown[i].ptr, name.ptr, (size_t)name.len) == 0) {
                    return DECLINED; /* a duplicate name */
                }
            }
            if (unknowns == UNKNOWN_MAX) {
                return DECLINED;
            }
            unknown[unknowns++] = name;
        }
        else if (v->seen & (1u << field)) {
            return DECLINED; /* a duplicate name */
        }
        else {
            v->seen |= 1u << field;
        }

        const char *q = p; /* the end of the value; p when it is declined */
        span s;
        switch (field) {
        case F_EVENT_ID:
        case F_PACKAGE_ID:
            if (*p == '"' && (q = scan_string(p, end, &s)) != NULL && s.len >= 1 && s.len <= ID_MAX) {
                *(field == F_EVENT_ID ? &v->event_id : &v->package_id) = s;
            }
            else {
                q = p;
            }
            break;
        case F_PERIOD:
            if (*p == '"') {
                if ((q = scan_string(p, end, &s)) != NULL && s.len >= 1 && s.len <= PERIOD_MAX) {
                    v->period = s;
                }
                else {
                    q = p;
                }
            }
            else {
                q = scan_literal(p, end, "null", 4);
            }
            break;
        case F_MSISDN:
            /* ^\+?[0-9]{5,15}$, the + stripped */
            if (*p == '"' && (q = scan_string(p, end, &s)) != NULL) {
                if (s.len > 0 && s.ptr[0] == '+') {
                    s.ptr++;
                    s.len--;
                }
                Py_ssize_t i = 0;
                while (i < s.len && is_digit(s.ptr[i])) {
                    i++;
                }
                if (i == s.len && s.len >= MSISDN_MIN && s.len <= MSISDN_MAX) {
                    v->msisdn = s;
                }
                else {
                    q = p;
                }
            }
            else {
                q = p;
            }
            break;
        case F_KIND:
            if (*p == '"' && (q = scan_string(p, end, &s)) != NULL
                && (v->kind = kind_of(kinds, s)) != NULL) {
                break;
            }
            q = p;
            break;
        case F_EVENT_TIME:
            /* a number 0 <= t < 1e11; a string is an RFC 3339 date-time, left to pydantic */
            q = parse_float(p, end, &v->event_time);
            if (q == NULL) {
                return FAILED;
            }
            if (q != p && !(v->event_time >= 0.0 && v->event_time < EPOCH_SECONDS_LIMIT)) {
                q = p;
            }
            break;
        case F_PERCENT:
            if (*p == 'n') {
                q = scan_literal(p, end, "null", 4);
                break;
            }
            q = parse_float(p, end, &v->percent);
            if (q == NULL) {
                return FAILED;
            }
            if (q != p) {
                if (v->percent >= 0.0 && v->percent <= PERCENT_MAX) {
                    v->has_percent = 1;
                }
                else {
                    q = p;
                }
            }
            break;
        case F_SEQUENCE:
        case F_USED_BYTES:
        case F_QUOTA_BYTES: {
            int i = field - F_SEQUENCE;
            if (*p == 'n') {
                q = scan_literal(p, end, "null", 4);
            }
            else {
                q = parse_count(p, end, &v->counts[i]);
                v->has_count[i] = q != p;
            }
            break;
        }
        default:
            q = skip_scalar(p, end);
            break;
        }
        if (q == p) {
            return DECLINED;
        }
        p = skip_ws(q, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            break;
        }
        return DECLINED; /* a missing comma, a truncated line, "nullx", "01" */
    }
    if (skip_ws(p + 1, end) != end) {
        return DECLINED; /* something after the object */
    }
    return (v->seen & REQUIRED) == REQUIRED ? EVENT : DECLINED;
}

/* --- building the event -------------------------------------------------------------------------- */

static PyObject *
ascii_str(span s)
{
    /* the characters are checked ASCII: the compact ASCII representation, filled by memcpy */
    PyObject *out = PyUnicode_New(s.len, 127);
    if (out != NULL) {
        memcpy(PyUnicode_1BYTE_DATA(out), s.ptr, (size_t)s.len);
    }
    return out;
}

/* percent when null or absent: used * 100 / quota capped at 100 if quota is truthy and used is
 * given, else None (schema.py's _computed_percent).  The division is Python's int true division, so
 * the rounding is the very one of the Python code. */
static PyObject *
computed_percent(fastjson_state *st, const line_values *v)
{
    if (!v->has_count[2] || v->counts[2] == 0 || !v->has_count[1]) {
        Py_RETURN_NONE;
    }
    if (v->counts[1] >= v->counts[2]) {
        return PyFloat_FromDouble(100.0);
    }
    PyObject *used = PyLong_FromLongLong(v->counts[1]);
    if (used == NULL) {
        return NULL;
    }
    PyObject *scaled = PyNumber_Multiply(used, st->hundred);
    Py_DECREF(used);
    if (scaled == NULL) {
        return NULL;
    }
    PyObject *quota = PyLong_FromLongLong(v->counts[2]);
    if (quota == NULL) {
        Py_DECREF(scaled);
        return NULL;
    }
    PyObject *out = PyNumber_TrueDivide(scaled, quota);
    Py_DECREF(scaled);
    Py_DECREF(quota);
    return out;
}

static PyObject *
count_or_none(const line_values *v, int i)
{
    if (!v->has_count[i]) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(v->counts[i]);
}

/* The UsageEvent of a parsed line, a new reference (NULL with an exception set). */
static PyObject *
build_event(fastjson_state *st, PyTypeObject *cls, PyObject *const *descrs, const line_values *v,
            PyObject *source)
{
    PyObject *values[F_COUNT];
    values[F_EVENT_ID] = ascii_str(v->event_id);
    values[F_MSISDN] = ascii_str(v->msisdn);
    values[F_KIND] = Py_NewRef(v->kind);
    values[F_PACKAGE_ID] = ascii_str(v->package_id);
    values[F_EVENT_TIME] = PyFloat_FromDouble(v->event_time);
    values[F_SOURCE] = Py_NewRef(source);
    values[F_SEQUENCE] = count_or_none(v, 0);
    values[F_USED_BYTES] = count_or_none(v, 1);
    values[F_QUOTA_BYTES] = count_or_none(v, 2);
    values[F_PERCENT] = v->has_percent ? PyFloat_FromDouble(v->percent) : computed_percent(st, v);
    values[F_PERIOD] = v->period.ptr == NULL ? Py_NewRef(Py_None) : ascii_str(v->period);

    PyObject *event = NULL;
    for (int i = 0; i < F_COUNT; i++) {
        if (values[i] == NULL) {
            goto done;
        }
    }
    event = cls->tp_alloc(cls, 0);
    if (event == NULL) {
        goto done;
    }
    for (int i = 0; i < F_COUNT; i++) {
        PyObject *descr = descrs[i];
        if (Py_TYPE(descr)->tp_descr_set(descr, event, values[i]) < 0) {
            Py_CLEAR(event);
            goto done;
        }
    }
    /* Out of the cycle collector's sight, as CPython untracks tuples of atoms: an event refers to
     * str, int, float, None and a UsageKind member, and the members live as long as their module,
     * so no garbage cycle can pass through an event; refcounting frees it.  Tracked, the 10,000
     * events of a body would be traversed by every young collection and, promoted, would set off
     * full collections: from 0.4 to 0.5..1.1 us per event. */
    PyObject_GC_UnTrack(event);
done:
    for (int i = 0; i < F_COUNT; i++) {
        Py_XDECREF(values[i]);
    }
    return event;
}

/* Make sure the state holds the member descriptors of `cls`, a slots class with a writable object
 * slot for every field (what @dataclass(slots=True) makes).  -1 with TypeError otherwise. */
static int
load_class(fastjson_state *st, PyObject *cls)
{
    if (st->cls == cls) {
        return 0;
    }
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "parse_lines(): cls must be a class");
        return -1;
    }
    PyObject *descrs[F_COUNT];
    for (int i = 0; i < F_COUNT; i++) {
        PyObject *descr = PyObject_GetAttrString(cls, FIELD_NAMES[i]);
        int ok = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)
                 && ((PyDescrObject *)descr)->d_type == (PyTypeObject *)cls
                 && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX
                 && !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY);
        if (!ok) {
            if (descr == NULL) {
                PyErr_Clear();
            }
            Py_XDECREF(descr);
            for (int j = 0; j < i; j++) {
                Py_DECREF(descrs[j]);
            }
            PyErr_Format(PyExc_TypeError, "parse_lines(): %R has no slot %s of its own", cls,
                         FIELD_NAMES[i]);
            return -1;
        }
        descrs[i] = descr;
    }
    Py_XSETREF(st->cls, Py_NewRef(cls));
    for (int i = 0; i < F_COUNT; i++) {
        Py_XSETREF(st->descrs[i], descrs[i]);
    }
    return 0;
}

/* --- the function -------------------------------------------------------------------------------- */

PyDoc_STRVAR(parse_lines_doc,
"parse_lines(body, start, events, cls, kinds, source, /)\n--\n\n"
"Parse the JSON lines of body[start:] (start: where a line starts), appending the event of each\n"
"line to `events` and skipping blank lines, up to the first line not plainly valid; return the\n"
"offset where that line starts (len(body) if every line was taken).  `cls` is UsageEvent, `kinds`\n"
"maps the UTF-8 value of each UsageKind to the member, `source` is the source of every event.\n"
"A body not bytes or a source not exactly a str: nothing is taken.");

static PyObject *
parse_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "parse_lines() takes 6 positional arguments but %zd were given",
                     nargs);
        return NULL;
    }
    PyObject *body = args[0], *events = args[2], *cls = args[3], *kinds = args[4], *source = args[5];
    if (!PyList_Check(events) || !PyDict_Check(kinds)) {
        PyErr_SetString(PyExc_TypeError, "parse_lines(): events must be a list, kinds a dict");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* Another body (a bytearray) or source (a str subclass, which could hold a reference to the
     * events: see build_event) is not the plain case: every line is declined.  Whatever the body,
     * start is one of its offsets, or the caller is wrong. */
    Py_ssize_t size = PyBytes_Check(body) ? PyBytes_GET_SIZE(body) : PyObject_Length(body);
    if (size < 0) {
        return NULL;
    }
    if (start < 0 || start > size) {
        PyErr_SetString(PyExc_ValueError, "parse_lines(): start must be within the body");
        return NULL;
    }
    if (!PyBytes_Check(body) || !PyUnicode_CheckExact(source)) {
        return PyLong_FromSsize_t(start);
    }
    Py_ssize_t pos = 0;
    PyObject *key, *member;
    while (PyDict_Next(kinds, &pos, &key, &member)) {
        if (!PyBytes_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "parse_lines(): the keys of kinds must be bytes");
            return NULL;
        }
    }
    fastjson_state *st = get_state(module);
    if (load_class(st, cls) < 0) {
        return NULL;
    }
    /* held for the call: making objects may run the garbage collector, whose finalizers could
     * call parse_lines with another class (replacing the state's descriptors) */
    Py_INCREF(cls);
    PyObject *descrs[F_COUNT];
    for (int i = 0; i < F_COUNT; i++) {
        descrs[i] = Py_NewRef(st->descrs[i]);
    }
    PyObject *result = NULL;
    const char *const text = PyBytes_AS_STRING(body); /* bytes are immutable: it stays as it is */
    const char *const text_end = text + size;
    const char *line = text + start;
    while (line < text_end) {
        /* a line ends at \n (bytes.split(b"\n") in schema.py): never inside a valid JSON string */
        const char *line_end = memchr(line, '\n', (size_t)(text_end - line));
        if (line_end == NULL) {
            line_end = text_end;
        }
        line_values v;
        int outcome = parse_line(line, line_end, kinds, &v);
        if (outcome == EVENT) {
            Py_INCREF(v.kind); /* borrowed from kinds, which a finalizer could change */
            PyObject *event = build_event(st, (PyTypeObject *)cls, descrs, &v, source);
            Py_DECREF(v.kind);
            outcome = event == NULL ? FAILED : PyList_Append(events, event) < 0 ? FAILED : EVENT;
            Py_XDECREF(event);
        }
        if (outcome == FAILED) {
            goto done;
        }
        if (outcome == DECLINED) {
            break;
        }
        line = line_end == text_end ? text_end : line_end + 1;
    }
    result = PyLong_FromSsize_t(line - text);
done:
    Py_DECREF(cls);
    for (int i = 0; i < F_COUNT; i++) {
        Py_DECREF(descrs[i]);
    }
    return result;
}

/* --- module -------------------------------------------------------------------------------------- */

static PyMethodDef fastjson_methods[] = {
    {"parse_lines", (PyCFunction)(void (*)(void))parse_lines, METH_FASTCALL, parse_lines_doc},
    {NULL, NULL, 0, NULL},
};

static int
fastjson_exec(PyObject *module)
{
    fastjson_state *st = get_state(module);
    st->hundred = PyLong_FromLong(100);
    if (st->hundred == NULL) {
        return -1;
    }
    /* the field order the C code assumes, for the tests to hold against dataclasses.fields() */
    PyObject *fields = PyTuple_New(F_COUNT);
    if (fields == NULL) {
        return -1;
    }
    for (int i = 0; i < F_COUNT; i++) {
        PyObject *name = PyUnicode_InternFromString(FIELD_NAMES[i]);
        if (name == NULL) {
            Py_DECREF(fields);
            return -1;
        }
        PyTuple_SET_ITEM(fields, i, name);
    }
    int added = PyModule_AddObjectRef(module, "FIELDS", fields);
    Py_DECREF(fields);
    return added;
}

static int
fastjson_traverse(PyObject *module, visitproc visit, void *arg)
{
    fastjson_state *st = get_state(module);
    Py_VISIT(st->cls);
    for (int i = 0; i < F_COUNT; i++) {
        Py_VISIT(st->descrs[i]);
    }
    Py_VISIT(st->hundred);
    return 0;
}

static int
fastjson_clear(PyObject *module)
{
    fastjson_state *st = get_state(module);
    Py_CLEAR(st->cls);
    for (int i = 0; i < F_COUNT; i++) {
        Py_CLEAR(st->descrs[i]);
    }
    Py_CLEAR(st->hundred);
    return 0;
}

static void
fastjson_free(void *module)
{
    fastjson_clear((PyObject *)module);
}

static PyModuleDef_Slot fastjson_slots[] = {
    {Py_mod_exec, fastjson_exec},
    {0, NULL},
};

PyDoc_STRVAR(fastjson_doc,
"Optional C fast path of the DPI event JSON lines of gateway.ingest.schema.\n\n"
"parse_lines takes the plainly valid lines and stops at the first other one, which the caller\n"
"hands to pydantic. Set TGW_PURE_PYTHON=1 to ignore it.");

static struct PyModuleDef fastjson_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gateway.ingest._fastjson",
    .m_doc = fastjson_doc,
    .m_size = sizeof(fastjson_state),
    .m_methods = fastjson_methods,
    .m_slots = fastjson_slots,
    .m_traverse = fastjson_traverse,
    .m_clear = fastjson_clear,
    .m_free = fastjson_free,
};

PyMODINIT_FUNC
PyInit__fastjson(void)
{
    return PyModuleDef_Init(&fastjson_module);
}
