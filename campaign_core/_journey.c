/*
 * Optional C accelerator of the campaign engine's journey (campaign_core/engine.py; issue #7,
 * "The reference journey", steps 1-3): the trigger path, Engine._trigger, which takes more than
 * 40 % of the engine's time on the reference journeys.
 *
 * TriggerPath(engine) is a callable (event, now, out) that does what Engine._trigger does, on the
 * same Python objects: the engine's dicts, its compiled campaigns (_Campaign), experiment assigners,
 * _Subscriber and _Offer objects and deadline heap, with the same Record and command builders;
 * records come out in the same order with the same detail keys in the same order.
 *
 * Why C that reads slots: CPython 3.11's specialising interpreter loads a slot, a global or a method
 * about as fast as the C API's generic attribute calls do, so the first version of this file (the same
 * steps through PyObject_GetAttr) was no faster than the Python method. This one reads and writes
 * the slots of the engine's own classes at their offsets (found once, from their member descriptors,
 * by configure()), hashes with its own BLAKE2b (RFC 7693) instead of copying hashlib objects, and
 * builds the _Offer without running its __init__; it checks each object's exact class before it
 * touches a slot, and an object of another class (a subclass, a test's stand-in) sends the event to
 * Engine._trigger whole, before anything has changed.
 *
 * Left to the engine's Python methods, which the common path does not reach: eligibility rules (the
 * compiled function is called), the open-offer and cooldown check (_busy), the control window
 * (_control_due), a profile's own zone (_profile_zone), scoring that is not a QueryCredit (_score). A
 * trigger kind whose campaigns look at the trigger's level or days left goes to Engine._trigger whole.
 * tests/campaign/test_engine_accelerated.py runs random event streams through an engine with this
 * path and one without and compares every command and the snapshots.
 *
 * No clock, no I/O: `now` comes with each call.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

/* --- BLAKE2b (RFC 7693), unkeyed, digest of 1..64 octets ---------------------------------------- */

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

/* RFC 7693 section 2.7: the message word schedule of rounds 0-9 (rounds 10 and 11 repeat 0 and 1) */
static const uint8_t blake2b_sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t
rotr64(uint64_t x, unsigned n)
{
    return (x >> n) | (x << (64 - n));
}

static inline uint64_t
load64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t x;
    memcpy(&x, p, 8); /* the words are little-endian (RFC 7693 section 2.4): as they lie */
    return x;
#else
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) {
        x = (x << 8) | p[i];
    }
    return x;
#endif
}

#define G(a, b, c, d, x, y)              \
    do {                                 \
        a = a + b + (x);                 \
        d = rotr64(d ^ a, 32);           \
        c = c + d;                       \
        b = rotr64(b ^ c, 24);           \
        a = a + b + (y);                 \
        d = rotr64(d ^ a, 16);           \
        c = c + d;                       \
        b = rotr64(b ^ c, 63);           \
    } while (0)

/* RFC 7693 section 3.2, F: compress one 128-octet block; `t` counts the octets so far, `last` ends */
static void
blake2b_compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last)
{
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) {
        m[i] = load64(block + 8 * i);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= t; /* the high word of the counter stays 0: inputs here are far below 2**64 octets */
    if (last) {
        v[14] = ~v[14];
    }
    /* the rounds written out, so that the schedule's indexes are constants the compiler folds */
#define ROUND(r)                                                                      \
    do {                                                                              \
        const uint8_t *s = blake2b_sigma[(r) % 10];                                   \
        G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);                                \
        G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);                                \
        G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);                               \
        G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);                               \
        G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);                               \
        G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);                             \
        G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);                              \
        G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);                              \
    } while (0)
    ROUND(0);
    ROUND(1);
    ROUND(2);
    ROUND(3);
    ROUND(4);
    ROUND(5);
    ROUND(6);
    ROUND(7);
    ROUND(8);
    ROUND(9);
    ROUND(10);
    ROUND(11);
#undef ROUND
    for (int i = 0; i < 8; i++) {
        h[i] ^= v[i] ^ v[i + 8];
    }
}
#undef G

/* BLAKE2b-(8 * outlen) of the concatenation a || b, unkeyed (hashlib.blake2b(a + b, digest_size=outlen)) */
static void
blake2b_two(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t *out, size_t outlen)
{
    uint64_t h[8];
    uint8_t block[128];
    size_t filled = 0;
    uint64_t total = 0;
    memcpy(h, blake2b_iv, sizeof h);
    h[0] ^= 0x01010000ULL ^ (uint64_t)outlen; /* parameter block: depth 1, fanout 1, no key */
    const uint8_t *parts[2] = {a, b};
    size_t lengths[2] = {alen, blen};
    for (int p = 0; p < 2; p++) {
        const uint8_t *data = parts[p];
        size_t length = lengths[p];
        while (length > 0) {
            if (filled == 128) { /* a full block with more to come: not the last */
                total += 128;
                blake2b_compress(h, block, total, 0);
                filled = 0;
            }
            size_t take = 128 - filled < length ? 128 - filled : length;
            memcpy(block + filled, data, take);
            filled += take;
            data += take;
            length -= take;
        }
    }
    memset(block + filled, 0, 128 - filled);
    total += filled;
    blake2b_compress(h, block, total, 1);
    for (size_t i = 0; i < outlen; i++) {
        out[i] = (uint8_t)(h[i / 8] >> (8 * (i % 8)));
    }
}

static PyObject *
blake2b_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    /* blake2b(data, digest_size): for the tests, against hashlib */
    Py_buffer data;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "blake2b(data, digest_size)");
        return NULL;
    }
    Py_ssize_t size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size < 1 || size > 64) {
        PyErr_SetString(PyExc_ValueError, "digest_size must be 1..64");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint8_t out[64];
    blake2b_two(data.buf, (size_t)data.len, NULL, 0, out, (size_t)size);
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)out, size);
}

/* --- the engine's classes and their slots ------------------------------------------------------- */

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* the engine module's objects, set once by configure() and held for the process's life */
static PyObject *record_builder, *query_credit_builder, *push_stk_builder, *send_sms_builder, *subscriber_class,
    *heappush, *heappop, *allowed;
static PyTypeObject *trigger_kind_type; /* TriggerKind: its members live as long as their class */
static PyTypeObject *record_kind_type;  /* RecordKind, Payment and ResponseChannel: the same */
static PyTypeObject *payment_type, *response_channel_type;
static PyTypeObject *offer_type, *subscriber_type, *campaign_type, *trigger_type, *profile_type,
    *assigner_type, *deadlines_type, *step_type, *option_set_type, *policy_type, *plan_type, *calendar_type;
static PyObject *kind_trigger, *kind_assigned, *kind_eligible, *kind_suppressed, *kind_deferred, *kind_contact;
static PyObject *state_scoring, *state_delayed, *state_awaiting, *no_attributes, *empty_text, *unknown_profile, *no_options, *arbitration_format;
static PyObject *zero_delay, *zero_int, *one_int; /* 0.0 (no experiment delay), 0 and 1 */
static Py_ssize_t recent_triggers;
static int configured;

/* slot offsets */
static Py_ssize_t tr_trigger_id, tr_kind, tr_msisdn, tr_event_time, tr_package_id, tr_level;
static Py_ssize_t sub_profile, sub_triggers, sub_offers, sub_last_start;
static Py_ssize_t camp_assign, camp_id, camp_eligible, camp_cooldown, camp_rank, camp_offer_salt,
    camp_score_timeout;
static Py_ssize_t asg_salt, asg_uppers, asg_arm_fields, asg_experiment, asg_experiment_id;
static Py_ssize_t prof_timezone, prof_stk_capable, tr_attributes;
static Py_ssize_t camp_steps, camp_expires_after;
static Py_ssize_t st_index, st_after, st_stk, st_plan, st_mode, st_style, st_suffix, st_channel_value,
    st_promotional, st_hard_cap;
static Py_ssize_t os_options, os_largest, os_package_ids;
static Py_ssize_t pol_dnd, pol_calendars, pol_state, pol_period_counters, pol_version;
static Py_ssize_t plan_promotional, plan_uses_calendar, plan_first_zero, plan_counts, plan_first, plan_caps;
static Py_ssize_t cal_lo, cal_hi, cal_quiet, cal_keys;
static Py_ssize_t cs_request_id, cs_balance, cs_credit_limit, dr_command_id, dr_delivered, dr_state;
static Py_ssize_t camp_packages_prices, camp_payment, camp_sized, st_wait;
static PyTypeObject *credit_type, *delivery_type, *responded_type, *activated_type, *option_type;
static PyObject *kind_scored, *kind_delivered, *kind_response, *kind_activation, *kind_fulfilled, *kind_closed;
static PyObject *state_activating, *state_open, *stk_ok, *stk_declined, *activate_builder, *reply_builder,
    *channel_sms, *transactional;
static Py_ssize_t recent_responses, recent_closed;
static Py_ssize_t rs_response_id, rs_msisdn, rs_channel, rs_offer_id, rs_option_id;
static Py_ssize_t ac_offer_id, ac_package_id, ac_payment, ac_price;
static Py_ssize_t opt_package_id, opt_price, opt_payment;
static Py_ssize_t sub_responses, sub_closed, camp_texts, os_by_name, os_names;
static Py_ssize_t pu_profile, prof_packages, prof_attributes, prof_msisdn;
static PyTypeObject *profile_updated_type, *package_type;
static Py_ssize_t dl_times, dl_ids, dl_unsorted;
static Py_ssize_t off_deadline, off_queued, off_state;

/* _Offer's slots in the order of its __init__ */
enum {
    O_OFFER_ID, O_CAMPAIGN, O_VARIANT, O_TRIGGER, O_MSISDN, O_SUBSCRIBER, O_STATE, O_STEP, O_STEP_READY,
    O_OFFERED, O_CHOSEN, O_PUSHED, O_DEADLINE, O_QUEUED, O_EXPIRES_AT, O_DELIVERED, O_COUNT
};
static const char *offer_slot_names[O_COUNT] = {
    "offer_id", "campaign", "variant", "trigger", "msisdn", "subscriber", "state", "step", "step_ready",
    "offered", "chosen", "pushed", "deadline", "queued", "expires_at", "delivered",
};
static Py_ssize_t offer_offsets[O_COUNT];

/* interned names */
static PyObject *s_by_trigger, *s_subscribers, *s_offers, *s_zone, *s_deadlines, *s_trigger, *s_kind,
    *s_trigger_id, *s_event_time, *s_package_id, *s_level, *s_value_, *s_profile_zone, *s_experiment,
    *s_control_due, *s_delay, *s_busy, *s_reason, *s_stage, *s_score, *s_until, *s_trigger_word,
    *s_score_suffix, *s_experiment_delay, *s_control, *s_push, *s_timezone, *s_pop, *s_due, *s_start_step,
    *s_send_step, *s_contact_planned, *s_not_allowed, *s_largest, *s_text, *s_texts, *s_policy, *s_version,
    *s_days_left, *s_get, *s_channel, *s_step, *s_command_id, *s_options, *s_latency, *s_policy_version,
    *s_maybe_prune, *s_close, *s_expired, *s_sort, *s_reverse, *s_none, *s_largest_mode, *s_balance,
    *s_credit_limit, *s_credit, *s_balance_word, *s_sized_method, *s_suppressed_word, *s_nothing_affordable,
    *s_reason_kw, *s_credit_scored, *s_delivered_method, *s_delivered, *s_state_key, *s_score_tag, *s_on_tick, *s_reject_response, *s_answer, *s_refused, *s_text_kw,
    *s_duplicate_word, *s_not_offered_yet, *s_not_offered, *s_duplicate_attr, *s_not_offered_attr, *s_expired_attr,
    *s_declined_attr, *s_declined_word, *s_accepted_attr, *s_confirmation_attr, *s_format_map, *s_fields_method,
    *s_option_fields, *s_response_id, *s_option, *s_payment, *s_price, *s_value, *s_record_method,
    *s_confirm_suffix, *s_outcome, *s_activated_word, *s_two_places, *s_response_method, *s_activation_method,
    *s_handlers, *s_handler_of, *s_on_profile, *s_handle;

static int
intern_names(void)
{
#define NAME(var, text)                         \
    do {                                        \
        var = PyUnicode_InternFromString(text); \
        if (var == NULL) {                      \
            return -1;                          \
        }                                       \
    } while (0)
    NAME(s_by_trigger, "_by_trigger");
    NAME(s_subscribers, "_subscribers");
    NAME(s_offers, "_offers");
    NAME(s_zone, "_zone");
    NAME(s_deadlines, "_deadlines");
    NAME(s_trigger, "_trigger");
    NAME(s_kind, "kind");
    NAME(s_trigger_id, "trigger_id");
    NAME(s_event_time, "event_time");
    NAME(s_package_id, "package_id");
    NAME(s_level, "level");
    NAME(s_value_, "_value_");
    NAME(s_profile_zone, "_profile_zone");
    NAME(s_experiment, "experiment");
    NAME(s_control_due, "_control_due");
    NAME(s_delay, "delay");
    NAME(s_busy, "_busy");
    NAME(s_reason, "reason");
    NAME(s_stage, "stage");
    NAME(s_score, "_score");
    NAME(s_until, "until");
    NAME(s_trigger_word, "trigger");
    NAME(s_score_suffix, ":score");
    NAME(s_experiment_delay, "experiment delay");
    NAME(s_control, "control");
    NAME(s_push, "push");
    NAME(s_timezone, "timezone");
    NAME(s_pop, "pop");
    NAME(s_due, "_due");
    NAME(s_start_step, "_start_step");
    NAME(s_send_step, "_send_step");
    NAME(s_contact_planned, "contact_planned");
    NAME(s_not_allowed, "_not_allowed");
    NAME(s_largest, "_largest");
    NAME(s_text, "_text");
    NAME(s_texts, "_texts");
    NAME(s_policy, "policy");
    NAME(s_version, "version");
    NAME(s_days_left, "days_left");
    NAME(s_get, "get");
    NAME(s_channel, "channel");
    NAME(s_step, "step");
    NAME(s_command_id, "command_id");
    NAME(s_options, "options");
    NAME(s_latency, "latency");
    NAME(s_policy_version, "policy_version");
    NAME(s_maybe_prune, "_maybe_prune");
    NAME(s_close, "_close");
    NAME(s_expired, "expired");
    NAME(s_sort, "sort");
    NAME(s_reverse, "reverse");
    NAME(s_none, "none");
    NAME(s_largest_mode, "largest");
    NAME(s_balance, "balance");
    NAME(s_credit_limit, "credit_limit");
    NAME(s_credit, "credit");
    NAME(s_balance_word, "balance");
    NAME(s_sized_method, "_sized");
    NAME(s_suppressed_word, "suppressed");
    NAME(s_nothing_affordable, "nothing affordable");
    NAME(s_reason_kw, "reason");
    NAME(s_credit_scored, "_credit_scored");
    NAME(s_delivered_method, "_delivered");
    NAME(s_delivered, "delivered");
    NAME(s_state_key, "state");
    NAME(s_score_tag, "score");
    NAME(s_on_tick, "_on_tick");
    NAME(s_reject_response, "_reject_response");
    NAME(s_answer, "_answer");
    NAME(s_refused, "refused");
    NAME(s_text_kw, "text");
    NAME(s_duplicate_word, "duplicate");
    NAME(s_not_offered_yet, "not offered yet");
    NAME(s_not_offered, "not offered");
    NAME(s_duplicate_attr, "duplicate");
    NAME(s_not_offered_attr, "not_offered");
    NAME(s_expired_attr, "expired");
    NAME(s_declined_attr, "declined");
    NAME(s_declined_word, "declined");
    NAME(s_accepted_attr, "accepted");
    NAME(s_confirmation_attr, "confirmation");
    NAME(s_format_map, "format_map");
    NAME(s_fields_method, "_fields");
    NAME(s_option_fields, "_option_fields");
    NAME(s_response_id, "response_id");
    NAME(s_option, "option");
    NAME(s_payment, "payment");
    NAME(s_price, "price");
    NAME(s_value, "value");
    NAME(s_record_method, "record");
    NAME(s_confirm_suffix, ":confirm");
    NAME(s_outcome, "outcome");
    NAME(s_activated_word, "activated");
    NAME(s_two_places, ".2f");
    NAME(s_response_method, "_response");
    NAME(s_activation_method, "_activation");
    NAME(s_handlers, "_handlers");
    NAME(s_handler_of, "_handler_of");
    NAME(s_on_profile, "_on_profile");
    NAME(s_handle, "handle");
#undef NAME
    zero_delay = PyFloat_FromDouble(0.0);
    zero_int = PyLong_FromLong(0);
    one_int = PyLong_FromLong(1);
    empty_text = PyUnicode_New(0, 0);
    return zero_delay == NULL || zero_int == NULL || one_int == NULL || empty_text == NULL ? -1 : 0;
}

/* the offset of slot `name` of `type` (a member descriptor of kind T_OBJECT_EX), or -1 with TypeError */
static Py_ssize_t
slot_offset(PyTypeObject *type, const char *name)
{
    PyObject *key = PyUnicode_FromString(name);
    if (key == NULL) {
        return -1;
    }
    PyObject *descr = _PyType_Lookup(type, key); /* borrowed */
    Py_DECREF(key);
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT_EX ||
        (((PyMemberDescrObject *)descr)->d_member->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a writable slot", type->tp_name, name);
        return -1;
    }
    return ((PyMemberDescrObject *)descr)->d_member->offset;
}

/* a slot's value (borrowed), or NULL with AttributeError when it was never set (as Python would) */
static inline PyObject *
get_slot(PyObject *obj, Py_ssize_t offset, const char *name)
{
    PyObject *value = SLOT(obj, offset);
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%s' object has no attribute '%s'", Py_TYPE(obj)->tp_name, name);
    }
    return value;
}

/* obj.slot = value (a new reference is taken) */
static inline void
set_slot(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject *old = SLOT(obj, offset);
    SLOT(obj, offset) = Py_NewRef(value);
    Py_XDECREF(old);
}

/* --- fetching ahead what the Tick's next offers will read ------------------------------------------
 *
 * The offers due at one time are taken in offer-id order, which is no order in memory, and each costs a
 * chain of cache misses at 1M subscribers: the id, the offers dict's index slot and entry, the offer, its
 * subscriber and profile, the policy state's index slot and entry. The Tick knows the next ids, so it
 * fetches each link of the chain a few offers ahead of taking it, one link per stage. Stages read only
 * what an earlier stage fetched, and only to fetch more: no decision rests on them. On CPython 3.11 the
 * dicts' slots are found as its lookup finds them (the keys layout of Include/internal/pycore_dict.h);
 * elsewhere only the ids are fetched. An id whose first probe finds another key is not followed. */

#define AHEAD_ID 16     /* the id (its hash) */
#define AHEAD_INDEX 12  /* the offers dict's index slot */
#define AHEAD_ENTRY 8   /* its entry */
#define AHEAD_OFFER 5   /* the offer */
#define AHEAD_LINKED 3  /* its subscriber, the policy state's index slot */
#define AHEAD_STATE 1   /* the profile, the policy state's entry and value */

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define DICT_LAYOUT 1
typedef struct { /* PyDictKeysObject of CPython 3.11 */
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size;
    uint8_t dk_log2_index_bytes;
    uint8_t dk_kind; /* 1: str keys only (entries of key and value) */
    uint32_t dk_version;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
} DictKeys311;

typedef struct {
    PyObject *me_key;
    PyObject *me_value;
} UnicodeEntry311;

/* the str-keyed table of a dict, or NULL */
static inline DictKeys311 *
str_table(PyObject *dict)
{
    if (dict == NULL || !PyDict_CheckExact(dict) || ((PyDictObject *)dict)->ma_values != NULL) {
        return NULL;
    }
    DictKeys311 *keys = (DictKeys311 *)((PyDictObject *)dict)->ma_keys;
    return keys->dk_kind == 1 ? keys : NULL;
}

/* where the first probe for `key` (an exact str whose hash is known) reads its index, and its width */
static inline const char *
index_slot(DictKeys311 *keys, PyObject *key, int *width)
{
    Py_hash_t hash = ((PyASCIIObject *)key)->hash;
    if (hash == -1) {
        return NULL;
    }
    int log2 = keys->dk_log2_size;
    *width = log2 < 8 ? 1 : log2 < 16 ? 2 : log2 < 32 ? 4 : 8;
    return keys->dk_indices + (((size_t)hash & (((size_t)1 << log2) - 1)) * (size_t)*width);
}

/* the entry the first probe for `key` finds, or NULL (an empty slot, or none to find) */
static inline UnicodeEntry311 *
probed_entry(DictKeys311 *keys, PyObject *key)
{
    int width;
    const char *slot = index_slot(keys, key, &width);
    if (slot == NULL) {
        return NULL;
    }
    Py_ssize_t ix = width == 1 ? *(const int8_t *)slot
                    : width == 2 ? *(const int16_t *)slot
                    : width == 4 ? *(const int32_t *)slot
                                 : (Py_ssize_t) * (const int64_t *)slot;
    if (ix < 0 || ix >= keys->dk_nentries) {
        return NULL;
    }
    UnicodeEntry311 *entries = (UnicodeEntry311 *)(keys->dk_indices + ((size_t)1 << keys->dk_log2_index_bytes));
    return entries + ix;
}
#endif

/* the offer `id` names in `offers`, if the dict's first probe finds it, read only to fetch ahead */
static inline PyObject *
offer_ahead(PyObject *offers, PyObject *id)
{
#ifdef DICT_LAYOUT
    DictKeys311 *keys = str_table(offers);
    UnicodeEntry311 *entry = keys == NULL || !PyUnicode_CheckExact(id) ? NULL : probed_entry(keys, id);
    if (entry != NULL && entry->me_key == id && entry->me_value != NULL && Py_IS_TYPE(entry->me_value, offer_type)) {
        return entry->me_value;
    }
#endif
    return NULL;
}

/* Fetch the stages of the ids `size - 1 - AHEAD_*` of `due` (taken from its end). Inlined where it is
 * called: as a function of its own, whose only effects are prefetches, the compiler drops the call. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void
fetch_ahead(PyObject *due, Py_ssize_t size, PyObject *offers, PyObject *states)
{
    if (size > AHEAD_ID) {
        __builtin_prefetch(PyList_GET_ITEM(due, size - 1 - AHEAD_ID));
    }
#ifdef DICT_LAYOUT
    DictKeys311 *offer_keys = str_table(offers), *state_keys = str_table(states);
    if (offer_keys == NULL) {
        return;
    }
    if (size > AHEAD_INDEX) {
        PyObject *id = PyList_GET_ITEM(due, size - 1 - AHEAD_INDEX);
        int width;
        const char *slot = PyUnicode_CheckExact(id) ? index_slot(offer_keys, id, &width) : NULL;
        if (slot != NULL) {
            __builtin_prefetch(slot);
        }
    }
    if (size > AHEAD_ENTRY) {
        PyObject *id = PyList_GET_ITEM(due, size - 1 - AHEAD_ENTRY);
        UnicodeEntry311 *entry = PyUnicode_CheckExact(id) ? probed_entry(offer_keys, id) : NULL;
        if (entry != NULL) {
            __builtin_prefetch(entry);
        }
    }
    if (size > AHEAD_OFFER) {
        PyObject *offer = offer_ahead(offers, PyList_GET_ITEM(due, size - 1 - AHEAD_OFFER));
        if (offer != NULL) {
            __builtin_prefetch((char *)offer);
            __builtin_prefetch((char *)offer + 64);
            __builtin_prefetch((char *)offer + 128);
        }
    }
    if (size > AHEAD_LINKED) {
        PyObject *offer = offer_ahead(offers, PyList_GET_ITEM(due, size - 1 - AHEAD_LINKED));
        if (offer != NULL) {
            PyObject *subscriber = SLOT(offer, offer_offsets[O_SUBSCRIBER]), *msisdn = SLOT(offer, offer_offsets[O_MSISDN]);
            if (subscriber != NULL) {
                __builtin_prefetch(subscriber);
            }
            int width;
            const char *slot = state_keys == NULL || msisdn == NULL || !PyUnicode_CheckExact(msisdn)
                                   ? NULL
                                   : index_slot(state_keys, msisdn, &width);
            if (slot != NULL) {
                __builtin_prefetch(slot);
            }
        }
    }
    if (size > AHEAD_STATE) {
        PyObject *offer = offer_ahead(offers, PyList_GET_ITEM(due, size - 1 - AHEAD_STATE));
        if (offer != NULL) {
            PyObject *subscriber = SLOT(offer, offer_offsets[O_SUBSCRIBER]), *msisdn = SLOT(offer, offer_offsets[O_MSISDN]);
            if (subscriber != NULL && Py_IS_TYPE(subscriber, subscriber_type) && SLOT(subscriber, sub_profile) != NULL) {
                __builtin_prefetch(SLOT(subscriber, sub_profile));
            }
            UnicodeEntry311 *entry = state_keys == NULL || msisdn == NULL || !PyUnicode_CheckExact(msisdn)
                                         ? NULL
                                         : probed_entry(state_keys, msisdn);
            if (entry != NULL) {
                __builtin_prefetch(entry);
                if (entry->me_key == msisdn && entry->me_value != NULL) {
                    __builtin_prefetch(entry->me_value);
                }
            }
        }
    }
#else
    (void)offers;
    (void)states;
#endif
}

/* --- what the collector need not walk ------------------------------------------------------------ */

/* Untrack a tuple none of whose items may be tracked: what the collector does to such a tuple when it
 * first meets it (_PyTuple_MaybeUntrack), done when the engine makes it, so that no young collection
 * walks the millions of id and count tuples the engine keeps. The same rule: an item may be tracked
 * when it is a GC object and not a tuple already untracked. */
static void
untrack_atomic(PyObject *tuple)
{
    if (!PyTuple_CheckExact(tuple) || !PyObject_GC_IsTracked(tuple)) {
        return;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(tuple);
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (PyObject_IS_GC(item) && (!PyTuple_CheckExact(item) || PyObject_GC_IsTracked(item))) {
            return;
        }
    }
    PyObject_GC_UnTrack(tuple);
}

/* Untrack an object that holds atomic values only (an ActivePackage, a tuple of them, a Profile of
 * them): nothing it refers to can refer back, so no cycle can pass through it. */
static inline void
untrack_owned(PyObject *obj)
{
    if (PyObject_GC_IsTracked(obj)) {
        PyObject_GC_UnTrack(obj);
    }
}

/* a number as a double when that is exact: a float, or an int of at most 53 bits; else 0 */
static inline int
exact_double(PyObject *obj, double *value)
{
    if (PyFloat_CheckExact(obj)) {
        *value = PyFloat_AS_DOUBLE(obj);
        return 1;
    }
    if (PyLong_CheckExact(obj)) {
        int overflow = 0;
        long long whole_value = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (overflow || whole_value > (1LL << 53) || whole_value < -(1LL << 53)) {
            if (whole_value == -1 && PyErr_Occurred()) {
                PyErr_Clear();
            }
            return 0;
        }
        *value = (double)whole_value;
        return 1;
    }
    return 0;
}

/* PyObject_RichCompareBool for the engine's times and durations: floats and ints compared as doubles
 * when both convert exactly (as Python compares them: NaN is unequal and unordered), anything else
 * through Python's comparison */
static int
compare_numbers(PyObject *a, PyObject *b, int op)
{
    double x, y;
    if (exact_double(a, &x) && exact_double(b, &y)) {
        switch (op) {
        case Py_LT:
            return x < y;
        case Py_LE:
            return x <= y;
        case Py_EQ:
            return x == y;
        case Py_NE:
            return x != y;
        case Py_GT:
            return x > y;
        default:
            return x >= y;
        }
    }
    return PyObject_RichCompareBool(a, b, op);
}

/* engine.<name> for one of the engine's own instance attributes (its dicts, policy, zone): from the
 * instance's __dict__ (a lookup of the interned name, no type walk), else the attribute lookup; a new
 * reference. Engine declares no class attribute or property of these names. */
static PyObject *
engine_attr(PyObject *engine, PyObject *name)
{
    PyObject **dict = _PyObject_GetDictPtr(engine);
    if (dict != NULL && *dict != NULL && PyDict_CheckExact(*dict)) {
        PyObject *value = PyDict_GetItemWithError(*dict, name);
        if (value != NULL) {
            return Py_NewRef(value);
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return PyObject_GetAttr(engine, name);
}

/* --- records and state -------------------------------------------------------------------------- */

/* a dict of count (key, value) pairs, in order (borrowed references) */
static PyObject *
detail_of(Py_ssize_t count, PyObject **pairs)
{
    PyObject *detail = _PyDict_NewPresized(count);
    if (detail == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyDict_SetItem(detail, pairs[2 * i], pairs[2 * i + 1]) < 0) {
            Py_DECREF(detail);
            return NULL;
        }
    }
    return detail;
}

static void untrack_command(PyObject *out, PyObject *command);

/* out.append(_record(kind, now, msisdn, campaign_id, variant, offer_id, {pairs})) */
static int
append_record(PyObject *out, PyObject *kind, PyObject *now, PyObject *msisdn, PyObject *campaign_id,
              PyObject *variant, PyObject *offer_id, Py_ssize_t count, PyObject **pairs)
{
    PyObject *detail = detail_of(count, pairs);
    if (detail == NULL) {
        return -1;
    }
    PyObject *args[7] = {kind, now, msisdn, campaign_id, variant, offer_id, detail};
    PyObject *record = PyObject_Vectorcall(record_builder, args, 7, NULL);
    Py_DECREF(detail);
    if (record == NULL) {
        return -1;
    }
    untrack_command(out, record);
    int failed = PyList_Append(out, record);
    Py_DECREF(record);
    return failed;
}

/* (*items, last) as a new tuple, from the `start`th item of `items` on */
static PyObject *
tuple_plus(PyObject *items, Py_ssize_t start, PyObject *last)
{
    Py_ssize_t size = PyTuple_GET_SIZE(items);
    PyObject *grown = PyTuple_New(size - start + 1);
    if (grown == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = start; i < size; i++) {
        PyTuple_SET_ITEM(grown, i - start, Py_NewRef(PyTuple_GET_ITEM(items, i)));
    }
    PyTuple_SET_ITEM(grown, size - start, Py_NewRef(last));
    return grown;
}

/* engine._remember_start: subscriber.last_start without `key`'s pair, then (key, when) */
static int
remember_start(PyObject *subscriber, PyObject *key, PyObject *when)
{
    PyObject *starts = get_slot(subscriber, sub_last_start, "last_start");
    if (starts == NULL) {
        return -1;
    }
    if (!PyTuple_Check(starts)) {
        PyErr_SetString(PyExc_TypeError, "_Subscriber.last_start must be a tuple");
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(starts), kept = 0;
    PyObject *result = PyTuple_New(size + 1);
    if (result == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = PyTuple_GET_ITEM(starts, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 1) {
            PyErr_SetString(PyExc_TypeError, "_Subscriber.last_start must hold (key, time) pairs");
            Py_DECREF(result);
            return -1;
        }
        int other = PyObject_RichCompareBool(PyTuple_GET_ITEM(item, 0), key, Py_NE);
        if (other < 0) {
            Py_DECREF(result);
            return -1;
        }
        if (other) {
            PyTuple_SET_ITEM(result, kept++, Py_NewRef(item));
        }
    }
    PyObject *pair = PyTuple_Pack(2, key, when);
    if (pair == NULL) {
        Py_DECREF(result);
        return -1;
    }
    untrack_atomic(pair);
    PyTuple_SET_ITEM(result, kept++, pair);
    if (kept != size + 1 && _PyTuple_Resize(&result, kept) < 0) {
        return -1;
    }
    untrack_atomic(result);
    set_slot(subscriber, sub_last_start, result);
    Py_DECREF(result);
    return 0;
}

/* _Deadlines.push(when, key) */
static int
deadlines_push(PyObject *deadlines, PyObject *when, PyObject *key)
{
    if (!Py_IS_TYPE(deadlines, deadlines_type)) { /* not the engine's class: its own method */
        PyObject *args[3] = {deadlines, when, key};
        PyObject *done = PyObject_VectorcallMethod(s_push, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    PyObject *ids = get_slot(deadlines, dl_ids, "_ids");
    PyObject *times = ids == NULL ? NULL : get_slot(deadlines, dl_times, "times");
    PyObject *unsorted = times == NULL ? NULL : get_slot(deadlines, dl_unsorted, "_unsorted");
    if (unsorted == NULL) {
        return -1;
    }
    if (!PyDict_CheckExact(ids) || !PySet_Check(unsorted)) {
        PyErr_SetString(PyExc_TypeError, "_Deadlines holds a dict of ids and a set of unsorted times");
        return -1;
    }
    PyObject *found = PyDict_GetItemWithError(ids, when);
    if (found == NULL) {
        if (PyErr_Occurred() || PyDict_SetItem(ids, when, key) < 0) {
            return -1;
        }
        PyObject *args[2] = {times, when};
        PyObject *done = PyObject_Vectorcall(heappush, args, 2, NULL);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    if (PyUnicode_Check(found)) {
        PyObject *pair = PyList_New(2);
        if (pair == NULL) {
            return -1;
        }
        PyList_SET_ITEM(pair, 0, Py_NewRef(found));
        PyList_SET_ITEM(pair, 1, Py_NewRef(key));
        int failed = PyDict_SetItem(ids, when, pair);
        Py_DECREF(pair);
        if (failed < 0) {
            return -1;
        }
    } else if (!PyList_Check(found) || PyList_Append(found, key) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "_Deadlines ids must be a str or a list");
        }
        return -1;
    }
    return PySet_Add(unsorted, when);
}

/* Engine._arm: offer.deadline = when; queue it when it comes sooner than its live entry */
static int
arm(PyObject *engine, PyObject *offer, PyObject *key, PyObject *when)
{
    set_slot(offer, off_deadline, when);
    PyObject *queued = get_slot(offer, off_queued, "queued");
    if (queued == NULL) {
        return -1;
    }
    if (queued != Py_None) {
        int sooner = compare_numbers(when, queued, Py_LT);
        if (sooner <= 0) {
            return sooner;
        }
    }
    set_slot(offer, off_queued, when);
    PyObject *deadlines = engine_attr(engine, s_deadlines);
    if (deadlines == NULL) {
        return -1;
    }
    int failed = deadlines_push(deadlines, when, key);
    Py_DECREF(deadlines);
    return failed;
}

/* BLAKE2b of salt (bytes) followed by text (a str, as UTF-8): hashlib.blake2b(salt + text.encode()) */
static int
salted_digest(PyObject *salt, PyObject *text, uint8_t *digest, size_t size)
{
    Py_ssize_t length;
    const char *data = PyUnicode_AsUTF8AndSize(text, &length);
    if (data == NULL) {
        return -1;
    }
    blake2b_two((const uint8_t *)PyBytes_AS_STRING(salt), (size_t)PyBytes_GET_SIZE(salt), (const uint8_t *)data,
                (size_t)length, digest, size);
    return 0;
}

/* the experiment arm of `msisdn` (Assigner.__call__): its (campaign, control, name, delay), borrowed */
static PyObject *
arm_of(PyObject *assign, PyObject *msisdn)
{
    PyObject *salt = get_slot(assign, asg_salt, "salt");
    PyObject *uppers = salt == NULL ? NULL : get_slot(assign, asg_uppers, "_uppers");
    PyObject *fields = uppers == NULL ? NULL : get_slot(assign, asg_arm_fields, "arm_fields");
    if (fields == NULL) {
        return NULL;
    }
    if (!PyBytes_Check(salt) || !PyTuple_Check(uppers) || !PyTuple_Check(fields) ||
        PyTuple_GET_SIZE(fields) == 0) {
        PyErr_SetString(PyExc_TypeError, "Assigner: salt bytes, upper bounds and arm fields expected");
        return NULL;
    }
    uint8_t digest[8];
    if (salted_digest(salt, msisdn, digest, sizeof digest) < 0) {
        return NULL;
    }
    uint64_t value = 0;
    for (int i = 0; i < 8; i++) {
        value = (value << 8) | digest[i]; /* big-endian, as int.from_bytes(digest, "big") */
    }
    long bucket = (long)(value % 10000u); /* experiments.BUCKETS */
    /* bisect_right(uppers, bucket): the first arm whose upper bound is above the bucket */
    Py_ssize_t index = 0, count = PyTuple_GET_SIZE(uppers);
    while (index < count) {
        long upper = PyLong_AsLong(PyTuple_GET_ITEM(uppers, index));
        if (upper == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (bucket < upper) {
            break;
        }
        index++;
    }
    Py_ssize_t arms = PyTuple_GET_SIZE(fields);
    PyObject *arm_fields = PyTuple_GET_ITEM(fields, index < arms ? index : arms - 1);
    if (!PyTuple_Check(arm_fields) || PyTuple_GET_SIZE(arm_fields) != 4) {
        PyErr_SetString(PyExc_TypeError, "Assigner.arm_fields: (campaign, control, name, delay) per arm");
        return NULL;
    }
    return arm_fields;
}

/* whether subscriber.last_start has a pair for `key` (_last_start(subscriber, key) is not None): 1, 0, -1 */
static int
has_start(PyObject *subscriber, PyObject *key)
{
    PyObject *starts = get_slot(subscriber, sub_last_start, "last_start");
    if (starts == NULL) {
        return -1;
    }
    if (!PyTuple_Check(starts)) {
        PyErr_SetString(PyExc_TypeError, "_Subscriber.last_start must be a tuple");
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(starts);
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *pair = PyTuple_GET_ITEM(starts, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "_Subscriber.last_start must hold (key, time) pairs");
            return -1;
        }
        int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(pair, 0), key, Py_EQ);
        if (same != 0) {
            return same;
        }
    }
    return 0;
}

/* Engine._control_due: without an earlier control trial of the experiment it is due (and
 * remembered); with one, the engine's own method weighs the window. 1, 0, -1 */
static int
control_due(PyObject *engine, PyObject *subscriber, PyObject *experiment, PyObject *experiment_id, PyObject *now)
{
    int earlier = has_start(subscriber, experiment_id);
    if (earlier < 0) {
        return -1;
    }
    if (!earlier) {
        return remember_start(subscriber, experiment_id, now) < 0 ? -1 : 1;
    }
    PyObject *args[4] = {engine, subscriber, experiment, now};
    PyObject *due = PyObject_VectorcallMethod(s_control_due, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    int is_due = due == NULL ? -1 : PyObject_IsTrue(due);
    Py_XDECREF(due);
    return is_due;
}

/* Engine._score: a QueryCredit for a scored offer; the engine's own _score for the rest */
static int
score(PyObject *engine, PyObject *offer, PyObject *campaign, PyObject *key, PyObject *msisdn, PyObject *now,
      PyObject *out)
{
    PyObject *timeout = get_slot(campaign, camp_score_timeout, "score_timeout");
    if (timeout == NULL) {
        return -1;
    }
    if (timeout == Py_None) {
        PyObject *args[4] = {engine, offer, now, out};
        PyObject *done = PyObject_VectorcallMethod(s_score, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    Py_INCREF(timeout);
    set_slot(offer, off_state, state_scoring);
    int result = -1;
    PyObject *request = NULL;
    PyObject *when = PyNumber_Add(now, timeout);
    if (when == NULL || arm(engine, offer, key, when) < 0) {
        goto done;
    }
    request = PyUnicode_Concat(key, s_score_suffix);
    if (request == NULL) {
        goto done;
    }
    PyObject *args[3] = {request, msisdn, timeout};
    PyObject *command = PyObject_Vectorcall(query_credit_builder, args, 3, NULL);
    if (command == NULL) {
        goto done;
    }
    untrack_command(out, command);
    result = PyList_Append(out, command);
    Py_DECREF(command);
done:
    Py_DECREF(timeout);
    Py_XDECREF(when);
    Py_XDECREF(request);
    return result;
}

/* --- the trigger path --------------------------------------------------------------------------- */

/* why (engine-side) this subscriber may not start `campaign` now, or Py_None; new reference */
static PyObject *
reason_of(PyObject *engine, PyObject *campaign, PyObject *subscriber, PyObject *profile, PyObject *event,
          PyObject *now, PyObject *zone)
{
    PyObject *eligible = get_slot(campaign, camp_eligible, "eligible");
    if (eligible == NULL) {
        return NULL;
    }
    PyObject *reason;
    if (eligible == Py_None) {
        reason = Py_NewRef(Py_None);
    } else {
        PyObject *args[4] = {profile, event, now, zone};
        reason = PyObject_Vectorcall(eligible, args, 4, NULL);
        if (reason != Py_None) {
            return reason;
        }
    }
    /* `subscriber.offers or campaign.cooldown`: then the engine's _busy */
    PyObject *offers = get_slot(subscriber, sub_offers, "offers");
    PyObject *cooldown = offers == NULL ? NULL : get_slot(campaign, camp_cooldown, "cooldown");
    if (cooldown == NULL) {
        Py_DECREF(reason);
        return NULL;
    }
    int busy = PyObject_IsTrue(offers);
    if (busy == 0) {
        busy = PyObject_IsTrue(cooldown);
        if (busy == 1) {
            /* _busy with no open offer looks at the cooldown only: nothing to weigh without a last start */
            PyObject *campaign_id = get_slot(campaign, camp_id, "id");
            busy = campaign_id == NULL ? -1 : has_start(subscriber, campaign_id);
        }
    }
    if (busy < 0) {
        Py_DECREF(reason);
        return NULL;
    }
    if (busy) {
        Py_DECREF(reason);
        PyObject *args[4] = {engine, subscriber, campaign, now};
        reason = PyObject_VectorcallMethod(s_busy, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    return reason;
}

/* the offer id (model.offer_id): BLAKE2b-80 of the campaign's salt and the trigger id, in hex */
static PyObject *
offer_key(PyObject *campaign, PyObject *trigger_id)
{
    PyObject *salt = get_slot(campaign, camp_offer_salt, "offer_salt");
    if (salt == NULL) {
        return NULL;
    }
    if (!PyBytes_Check(salt)) {
        PyErr_SetString(PyExc_TypeError, "_Campaign.offer_salt must be bytes");
        return NULL;
    }
    uint8_t digest[10];
    if (salted_digest(salt, trigger_id, digest, sizeof digest) < 0) {
        return NULL;
    }
    PyObject *key = PyUnicode_New(20, 127);
    if (key == NULL) {
        return NULL;
    }
    static const char hex[] = "0123456789abcdef";
    Py_UCS1 *chars = PyUnicode_1BYTE_DATA(key);
    for (int i = 0; i < 10; i++) {
        chars[2 * i] = (Py_UCS1)hex[digest[i] >> 4];
        chars[2 * i + 1] = (Py_UCS1)hex[digest[i] & 15];
    }
    return key;
}

static void untrack_trigger(PyObject *event);

/* a new _Offer as _Offer.__init__ makes it (engine.py), without running it; the trigger it keeps is
 * untracked when it cannot be on a cycle (untrack_trigger) */
static PyObject *
new_offer(PyObject *key, PyObject *campaign, PyObject *variant, PyObject *event, PyObject *msisdn,
          PyObject *subscriber)
{
    PyObject *offer = offer_type->tp_alloc(offer_type, 0);
    if (offer == NULL) {
        return NULL;
    }
    PyObject *values[O_COUNT] = {
        [O_OFFER_ID] = key,        [O_CAMPAIGN] = campaign,       [O_VARIANT] = variant,
        [O_TRIGGER] = event,       [O_MSISDN] = msisdn,           [O_SUBSCRIBER] = subscriber,
        [O_STATE] = state_scoring, [O_STEP] = zero_int,           [O_STEP_READY] = Py_False,
        [O_OFFERED] = no_options,  [O_CHOSEN] = Py_None,          [O_PUSHED] = no_options,
        [O_DEADLINE] = Py_None,    [O_QUEUED] = Py_None,          [O_EXPIRES_AT] = Py_None,
        [O_DELIVERED] = Py_False,
    };
    for (int i = 0; i < O_COUNT; i++) {
        SLOT(offer, offer_offsets[i]) = Py_NewRef(values[i]);
    }
    untrack_trigger(event);
    /* The offer itself cannot be on a cycle either when what it refers to cannot lead back to it:
     * its trigger (untracked just now: atomic fields), its subscriber (tuples of ids and times, and
     * a profile: untracked when its attributes are the shared empty ones), its campaign and option
     * sets (the engine's own, made from the configuration) and atomic state. Then the young
     * collection need not walk it (300k offers in the triggers of 1M subscribers: 0.6 s of
     * collector time). A profile that may refer to anything, set later, tracks the subscriber's open
     * offers again (track_open_offers). */
    PyObject *profile = SLOT(subscriber, sub_profile);
    if (!PyObject_GC_IsTracked(event) && (profile == NULL || !PyObject_GC_IsTracked(profile))) {
        PyObject_GC_UnTrack(offer);
    }
    return offer;
}

typedef struct {
    PyObject *campaign; /* borrowed from the engine's tuple of campaigns */
    PyObject *variant;  /* new reference (None without an experiment) */
    PyObject *delay;    /* new reference: the arm's delay as configured, or 0.0 */
} Candidate;

/* whether every object the path reads by offset is of the class the offsets are of */
static int
native(PyObject *campaigns, PyObject *event, PyObject *subscriber)
{
    if (!Py_IS_TYPE(event, trigger_type) || (subscriber != NULL && !Py_IS_TYPE(subscriber, subscriber_type)) ||
        !PyUnicode_CheckExact(SLOT(event, tr_msisdn)) || !PyUnicode_CheckExact(SLOT(event, tr_trigger_id))) {
        return 0; /* (a str subclass could hash differently: its own encode()) */
    }
    Py_ssize_t count = PyTuple_GET_SIZE(campaigns);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *campaign = PyTuple_GET_ITEM(campaigns, i);
        if (!Py_IS_TYPE(campaign, campaign_type)) {
            return 0;
        }
        PyObject *assign = SLOT(campaign, camp_assign);
        if (assign != NULL && assign != Py_None && !Py_IS_TYPE(assign, assigner_type)) {
            return 0;
        }
    }
    return 1;
}

static int profile_and_zone(PyObject *engine, PyObject *subscriber, PyObject **profile, PyObject **zone);

/* Engine._trigger once the campaigns are known (not selective): 1 done, 0 not native (nothing
 * changed: the caller runs Engine._trigger), -1 error */
static int
trigger_campaigns(PyObject *engine, PyObject *campaigns, PyObject *event, PyObject *now, PyObject *out)
{
    if (SLOT(event, tr_msisdn) == NULL || SLOT(event, tr_trigger_id) == NULL || SLOT(event, tr_event_time) == NULL ||
        SLOT(event, tr_kind) == NULL || SLOT(event, tr_package_id) == NULL || SLOT(event, tr_level) == NULL) {
        return 0; /* a field never set: the Python path fails where it reads it */
    }
    PyObject *msisdn = SLOT(event, tr_msisdn), *trigger_id = SLOT(event, tr_trigger_id);
    PyObject *event_time = SLOT(event, tr_event_time);
    PyObject *subscribers = engine_attr(engine, s_subscribers);
    if (subscribers == NULL) {
        return -1;
    }
    if (!PyDict_CheckExact(subscribers)) {
        Py_DECREF(subscribers);
        return 0;
    }
    PyObject *subscriber = PyDict_GetItemWithError(subscribers, msisdn);
    if (subscriber == NULL && PyErr_Occurred()) {
        Py_DECREF(subscribers);
        return -1;
    }
    if (!native(campaigns, event, subscriber)) {
        Py_DECREF(subscribers);
        return 0;
    }
    int result = -1;
    PyObject *profile = NULL, *zone = NULL, *controls = NULL, *offers_dict = NULL, *key = NULL, *offer = NULL,
             *campaign_id = NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(campaigns), found = 0;
    PyObject *last_assign = NULL, *last_fields = NULL; /* borrowed: the engine holds both */
    Candidate stack[4];
    Candidate *candidates = count <= 4 ? stack : PyMem_New(Candidate, count);
    if (candidates == NULL) {
        PyErr_NoMemory();
        Py_DECREF(subscribers);
        return -1;
    }
    if (subscriber == NULL) {
        subscriber = PyObject_CallNoArgs(subscriber_class);
        if (subscriber == NULL) {
            goto done;
        }
        if (!Py_IS_TYPE(subscriber, subscriber_type)) {
            PyErr_SetString(PyExc_TypeError, "_Subscriber() made an object of another class");
            goto done;
        }
        if (PyDict_SetItem(subscribers, msisdn, subscriber) < 0) {
            goto done;
        }
    } else {
        Py_INCREF(subscriber);
    }
    PyObject *seen = get_slot(subscriber, sub_triggers, "triggers");
    if (seen == NULL) {
        goto done;
    }
    if (!PyTuple_Check(seen)) {
        PyErr_SetString(PyExc_TypeError, "_Subscriber.triggers must be a tuple");
        goto done;
    }
    int known = PySequence_Contains(seen, trigger_id);
    if (known != 0) {
        result = known < 0 ? -1 : 1; /* a re-delivery: already decided */
        goto done;
    }
    {
        Py_ssize_t size = PyTuple_GET_SIZE(seen);
        PyObject *kept = tuple_plus(seen, size > recent_triggers - 1 ? size - (recent_triggers - 1) : 0, trigger_id);
        if (kept == NULL) {
            goto done;
        }
        untrack_atomic(kept);
        set_slot(subscriber, sub_triggers, kept);
        Py_DECREF(kept);
    }
    {
        PyObject *kind = SLOT(event, tr_kind), *package_id = SLOT(event, tr_package_id);
        PyObject *level = SLOT(event, tr_level);
        PyObject *kind_value = PyObject_GetAttr(kind, s_value_);
        if (kind_value == NULL) {
            goto done;
        }
        PyObject *pairs[10] = {s_trigger_id, trigger_id, s_kind,  kind_value, s_package_id,
                               package_id,   s_level,    level,   s_event_time, event_time};
        int failed = append_record(out, kind_trigger, now, msisdn, Py_None, Py_None, Py_None, 5, pairs);
        Py_DECREF(kind_value);
        if (failed < 0) {
            goto done;
        }
    }
    if (profile_and_zone(engine, subscriber, &profile, &zone) < 0) {
        goto done; /* (no profile: billing never described this subscriber, the rules see the defaults) */
    }

    for (Py_ssize_t c = 0; c < count; c++) {
        PyObject *campaign = PyTuple_GET_ITEM(campaigns, c);
        PyObject *assign = get_slot(campaign, camp_assign, "assign");
        PyObject *this_id = assign == NULL ? NULL : get_slot(campaign, camp_id, "id");
        if (this_id == NULL) {
            goto done;
        }
        PyObject *variant = Py_None, *delay = zero_delay;
        if (assign != Py_None) {
            /* campaigns of one experiment share its Assigner: the arm is hashed once per trigger */
            PyObject *fields = assign == last_assign ? last_fields : arm_of(assign, msisdn);
            last_assign = assign;
            last_fields = fields;
            PyObject *experiment_id = fields == NULL ? NULL : get_slot(assign, asg_experiment_id, "experiment_id");
            if (experiment_id == NULL) {
                goto done;
            }
            PyObject *arm_campaign = PyTuple_GET_ITEM(fields, 0), *control = PyTuple_GET_ITEM(fields, 1);
            PyObject *name = PyTuple_GET_ITEM(fields, 2);
            int other = PyObject_RichCompareBool(arm_campaign, this_id, Py_NE);
            if (other < 0) {
                goto done;
            }
            if (other) {
                /* another arm: the control arm is recorded (once per experiment and window), never contacted */
                int is_control = PyObject_IsTrue(control);
                if (is_control < 0) {
                    goto done;
                }
                if (is_control && controls != NULL) {
                    int listed = PySet_Contains(controls, experiment_id);
                    if (listed < 0) {
                        goto done;
                    }
                    is_control = !listed;
                }
                if (!is_control) {
                    continue;
                }
                PyObject *eligible = get_slot(campaign, camp_eligible, "eligible");
                if (eligible == NULL) {
                    goto done;
                }
                PyObject *reason;
                if (eligible == Py_None) {
                    reason = Py_NewRef(Py_None);
                } else {
                    PyObject *args[4] = {profile, event, now, zone};
                    reason = PyObject_Vectorcall(eligible, args, 4, NULL);
                    if (reason == NULL) {
                        goto done;
                    }
                }
                int eligible_now = reason == Py_None;
                Py_DECREF(reason);
                if (!eligible_now) {
                    continue;
                }
                PyObject *experiment = get_slot(assign, asg_experiment, "experiment");
                if (experiment == NULL) {
                    goto done;
                }
                int is_due = control_due(engine, subscriber, experiment, experiment_id, now);
                if (is_due < 0) {
                    goto done;
                }
                if (!is_due) {
                    continue;
                }
                if (controls == NULL && (controls = PySet_New(NULL)) == NULL) {
                    goto done;
                }
                if (PySet_Add(controls, experiment_id) < 0) {
                    goto done;
                }
                PyObject *pairs[8] = {s_experiment, experiment_id, s_control,    Py_True,
                                      s_trigger_id, trigger_id,    s_event_time, event_time};
                if (append_record(out, kind_assigned, now, msisdn, Py_None, name, Py_None, 4, pairs) < 0) {
                    goto done;
                }
                continue;
            }
            variant = name;
            delay = PyTuple_GET_ITEM(fields, 3);
            PyObject *pairs[6] = {s_experiment, experiment_id, s_control, Py_False, s_trigger_id, trigger_id};
            if (append_record(out, kind_assigned, now, msisdn, this_id, variant, Py_None, 3, pairs) < 0) {
                goto done;
            }
        }
        PyObject *reason = reason_of(engine, campaign, subscriber, profile, event, now, zone);
        if (reason == NULL) {
            goto done;
        }
        if (reason != Py_None) {
            PyObject *pairs[4] = {s_reason, reason, s_stage, s_trigger_word};
            int failed = append_record(out, kind_suppressed, now, msisdn, this_id, variant, Py_None, 2, pairs);
            Py_DECREF(reason);
            if (failed < 0) {
                goto done;
            }
            continue;
        }
        Py_DECREF(reason);
        candidates[found].campaign = campaign;
        candidates[found].variant = Py_NewRef(variant);
        candidates[found].delay = Py_NewRef(delay);
        found++;
    }
    if (found == 0) {
        result = 1;
        goto done;
    }
    Py_ssize_t winner = 0;
    if (found > 1) { /* arbitration (experiments.arbitrate): priority, then value, then campaign id */
        PyObject *best = get_slot(candidates[0].campaign, camp_rank, "rank");
        if (best == NULL) {
            goto done;
        }
        for (Py_ssize_t i = 1; i < found; i++) {
            PyObject *rank = get_slot(candidates[i].campaign, camp_rank, "rank");
            int lower = rank == NULL ? -1 : PyObject_RichCompareBool(rank, best, Py_LT);
            if (lower < 0) {
                goto done;
            }
            if (lower) {
                best = rank;
                winner = i;
            }
        }
        PyObject *winner_id = get_slot(candidates[winner].campaign, camp_id, "id");
        PyObject *text = winner_id == NULL ? NULL : PyUnicode_Format(arbitration_format, winner_id);
        if (text == NULL) {
            goto done;
        }
        for (Py_ssize_t i = 0; i < found; i++) {
            if (i == winner) {
                continue;
            }
            PyObject *loser_id = get_slot(candidates[i].campaign, camp_id, "id");
            PyObject *pairs[4] = {s_reason, text, s_stage, s_trigger_word};
            if (loser_id == NULL || append_record(out, kind_suppressed, now, msisdn, loser_id,
                                                  candidates[i].variant, Py_None, 2, pairs) < 0) {
                Py_DECREF(text);
                goto done;
            }
        }
        Py_DECREF(text);
    }
    PyObject *campaign = candidates[winner].campaign, *variant = candidates[winner].variant;
    PyObject *delay = candidates[winner].delay;
    campaign_id = Py_XNewRef(get_slot(campaign, camp_id, "id"));
    key = campaign_id == NULL ? NULL : offer_key(campaign, trigger_id);
    if (key == NULL) {
        goto done;
    }
    offers_dict = engine_attr(engine, s_offers);
    if (offers_dict == NULL) {
        goto done;
    }
    if (!PyDict_CheckExact(offers_dict)) {
        PyErr_SetString(PyExc_TypeError, "Engine._offers must be a dict");
        goto done;
    }
    int taken = PyDict_Contains(offers_dict, key);
    if (taken != 0) {
        result = taken < 0 ? -1 : 1; /* the same trigger once more under another id (defensive) */
        goto done;
    }
    offer = new_offer(key, campaign, variant, event, msisdn, subscriber);
    if (offer == NULL || PyDict_SetItem(offers_dict, key, offer) < 0) {
        goto done;
    }
    {
        PyObject *open = get_slot(subscriber, sub_offers, "offers");
        if (open == NULL) {
            goto done;
        }
        if (!PyTuple_Check(open)) {
            PyErr_SetString(PyExc_TypeError, "_Subscriber.offers must be a tuple");
            goto done;
        }
        PyObject *grown = tuple_plus(open, 0, key);
        if (grown == NULL) {
            goto done;
        }
        untrack_atomic(grown);
        set_slot(subscriber, sub_offers, grown);
        Py_DECREF(grown);
    }
    if (remember_start(subscriber, campaign_id, now) < 0) {
        goto done;
    }
    {
        PyObject *pairs[6] = {s_trigger_id, trigger_id, s_event_time, event_time, s_delay, delay};
        if (append_record(out, kind_eligible, now, msisdn, campaign_id, variant, key, 3, pairs) < 0) {
            goto done;
        }
    }
    int deferred = compare_numbers(delay, zero_int, Py_GT);
    if (deferred < 0) {
        goto done;
    }
    if (deferred) {
        set_slot(offer, off_state, state_delayed);
        PyObject *until = PyNumber_Add(now, delay);
        if (until == NULL) {
            goto done;
        }
        PyObject *pairs[4] = {s_until, until, s_reason, s_experiment_delay};
        int failed = arm(engine, offer, key, until) < 0 ||
                     append_record(out, kind_deferred, now, msisdn, campaign_id, variant, key, 2, pairs) < 0;
        Py_DECREF(until);
        result = failed ? -1 : 1;
        goto done;
    }
    result = score(engine, offer, campaign, key, msisdn, now, out) < 0 ? -1 : 1;
done:
    for (Py_ssize_t i = 0; i < found; i++) {
        Py_DECREF(candidates[i].variant);
        Py_DECREF(candidates[i].delay);
    }
    if (candidates != stack) {
        PyMem_Free(candidates);
    }
    Py_DECREF(subscribers);
    Py_XDECREF(subscriber);
    Py_XDECREF(profile);
    Py_XDECREF(zone);
    Py_XDECREF(controls);
    Py_XDECREF(offers_dict);
    Py_XDECREF(key);
    Py_XDECREF(offer);
    Py_XDECREF(campaign_id);
    return result;
}

/* --- the contact policy's allowed contacts (ContactPolicy.contact_planned, policy.py) ----------- */

#define MAX_STATE 64 /* period starts and counters of one subscriber's state: a handful in any policy */

/* a whole number as a C long long, or 0 with *ok cleared (not an int, or too large) */
static inline long long
whole(PyObject *value, int *ok)
{
    if (!PyLong_CheckExact(value)) {
        *ok = 0;
        return 0;
    }
    int overflow = 0;
    long long result = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (result == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        *ok = 0;
    }
    return result;
}

/* ContactPolicy.contact_planned(plan, msisdn, now, zone) when the contact is allowed and the calendar
 * holds `now` (counted here, as there); for anything else (do-not-disturb, quiet hours, a cap
 * reached, a calendar to refresh, objects of other classes) the policy's own method, which this
 * changes nothing before. New reference to the verdict. */
static PyObject *
contact_planned(PyObject *policy, PyObject *plan, PyObject *msisdn, PyObject *now, PyObject *zone)
{
    PyObject *args[5] = {policy, plan, msisdn, now, zone};
#define POLICY_METHOD() PyObject_VectorcallMethod(s_contact_planned, args, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
    if (!Py_IS_TYPE(policy, policy_type) || !Py_IS_TYPE(plan, plan_type) ||
        !(PyFloat_CheckExact(now) || PyLong_CheckExact(now))) {
        return POLICY_METHOD();
    }
    PyObject *promotional = SLOT(plan, plan_promotional), *uses_calendar = SLOT(plan, plan_uses_calendar);
    PyObject *dnd = SLOT(policy, pol_dnd), *calendars = SLOT(policy, pol_calendars), *states = SLOT(policy, pol_state);
    PyObject *first_zero = SLOT(plan, plan_first_zero), *counts = SLOT(plan, plan_counts);
    PyObject *first = SLOT(plan, plan_first), *caps = SLOT(plan, plan_caps);
    PyObject *period_counters = SLOT(policy, pol_period_counters);
    if (promotional == NULL || uses_calendar == NULL || dnd == NULL || calendars == NULL || states == NULL ||
        first_zero == NULL || counts == NULL || first == NULL || caps == NULL || period_counters == NULL ||
        !PyBool_Check(promotional) || !PyBool_Check(uses_calendar) || !PyAnySet_Check(dnd) ||
        !PyDict_CheckExact(calendars) || !PyDict_CheckExact(states) || !PyTuple_CheckExact(counts) ||
        !PyTuple_CheckExact(first) || !PyTuple_CheckExact(caps) || !PyTuple_CheckExact(period_counters)) {
        return POLICY_METHOD();
    }
    int is_promotional = promotional == Py_True;
    if (is_promotional) {
        int listed = PySet_Contains(dnd, msisdn);
        if (listed != 0) {
            return listed < 0 ? NULL : POLICY_METHOD(); /* do not disturb */
        }
    }
    if (uses_calendar == Py_False) {
        return Py_NewRef(allowed); /* no calendar: no rule counts this contact either */
    }
    PyObject *calendar = PyDict_GetItemWithError(calendars, zone);
    if (calendar == NULL) {
        return PyErr_Occurred() ? NULL : POLICY_METHOD(); /* a zone not seen before */
    }
    if (!Py_IS_TYPE(calendar, calendar_type)) {
        return POLICY_METHOD();
    }
    PyObject *lo = SLOT(calendar, cal_lo), *hi = SLOT(calendar, cal_hi), *quiet = SLOT(calendar, cal_quiet);
    PyObject *keys = SLOT(calendar, cal_keys);
    if (lo == NULL || hi == NULL || quiet == NULL || keys == NULL || !PyTuple_CheckExact(keys)) {
        return POLICY_METHOD();
    }
    int within = compare_numbers(lo, now, Py_LE);
    if (within == 1) {
        within = compare_numbers(now, hi, Py_LT);
    }
    if (within <= 0) {
        return within < 0 ? NULL : POLICY_METHOD(); /* the calendar is refreshed there */
    }
    if (is_promotional && quiet != Py_False) {
        return POLICY_METHOD(); /* quiet hours: deferred or dropped there */
    }
    PyObject *state = PyDict_GetItemWithError(states, msisdn);
    if (state == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        if (first_zero != Py_None) {
            return POLICY_METHOD(); /* a cap of zero */
        }
        if (PyTuple_GET_SIZE(counts) > 0) { /* the period starts, then zeros and this contact */
            PyObject *started = PySequence_Concat(keys, first);
            if (started == NULL) {
                return NULL;
            }
            untrack_atomic(started);
            int failed = PyDict_SetItem(states, msisdn, started);
            Py_DECREF(started);
            if (failed < 0) {
                return NULL;
            }
        }
        return Py_NewRef(allowed);
    }
    Py_ssize_t size = PyTuple_CheckExact(state) ? PyTuple_GET_SIZE(state) : -1;
    Py_ssize_t periods = PyTuple_GET_SIZE(keys);
    if (size < periods || size > MAX_STATE || PyTuple_GET_SIZE(period_counters) != periods) {
        return POLICY_METHOD();
    }
    long long values[MAX_STATE], starts[MAX_STATE];
    int ok = 1;
    for (Py_ssize_t i = 0; i < size; i++) {
        values[i] = whole(PyTuple_GET_ITEM(state, i), &ok);
    }
    for (Py_ssize_t i = 0; i < periods; i++) {
        starts[i] = whole(PyTuple_GET_ITEM(keys, i), &ok);
    }
    if (!ok) {
        return POLICY_METHOD();
    }
    Py_ssize_t cap_count = PyTuple_GET_SIZE(caps);
    for (Py_ssize_t i = 0; i < cap_count; i++) {
        PyObject *cap = PyTuple_GET_ITEM(caps, i);
        if (!PyTuple_CheckExact(cap) || PyTuple_GET_SIZE(cap) != 4) {
            return POLICY_METHOD();
        }
        long long position = whole(PyTuple_GET_ITEM(cap, 0), &ok), period = whole(PyTuple_GET_ITEM(cap, 1), &ok);
        long long limit = whole(PyTuple_GET_ITEM(cap, 2), &ok);
        if (!ok || position < 0 || position >= size || period < 0 || period >= periods) {
            return POLICY_METHOD();
        }
        long long count = starts[period] <= values[period] ? values[position] : 0;
        if (count >= limit) {
            return POLICY_METHOD(); /* capped: suppressed there */
        }
    }
    Py_ssize_t counted = PyTuple_GET_SIZE(counts);
    if (counted == 0) {
        return Py_NewRef(allowed);
    }
    /* ContactPolicy._counted: a later period starts its counts again, then one more contact. The new
     * tuple holds the same int objects _counted's would: the calendar's period starts, the state's
     * unchanged values (shared, as the policy's memory figures count on) and new counts */
    PyObject *sources[MAX_STATE];
    for (Py_ssize_t i = 0; i < size; i++) {
        sources[i] = PyTuple_GET_ITEM(state, i);
    }
    for (Py_ssize_t period = 0; period < periods; period++) {
        if (starts[period] > values[period]) {
            values[period] = starts[period];
            sources[period] = PyTuple_GET_ITEM(keys, period);
            PyObject *positions = PyTuple_GET_ITEM(period_counters, period);
            if (!PyTuple_CheckExact(positions)) {
                return POLICY_METHOD();
            }
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(positions); j++) {
                long long position = whole(PyTuple_GET_ITEM(positions, j), &ok);
                if (!ok || position < periods || position >= size) {
                    return POLICY_METHOD();
                }
                values[position] = 0;
                sources[position] = NULL;
            }
        }
    }
    for (Py_ssize_t i = 0; i < counted; i++) {
        long long position = whole(PyTuple_GET_ITEM(counts, i), &ok);
        if (!ok || position < periods || position >= size) {
            return POLICY_METHOD();
        }
        values[position] += 1;
        sources[position] = NULL;
    }
    PyObject *updated = PyTuple_New(size);
    if (updated == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = sources[i] != NULL ? Py_NewRef(sources[i]) : PyLong_FromLongLong(values[i]);
        if (item == NULL) {
            Py_DECREF(updated);
            return NULL;
        }
        PyTuple_SET_ITEM(updated, i, item);
    }
    untrack_atomic(updated);
    int failed = PyDict_SetItem(states, msisdn, updated);
    Py_DECREF(updated);
    return failed < 0 ? NULL : Py_NewRef(allowed);
#undef POLICY_METHOD
}

/* --- the steps and the clock (Engine._tick, _due, _start_step, _send_step) --------------------- */

/* engine.name(args...) -> 0 or -1 (the result is dropped) */
static int
call_engine(PyObject *engine, PyObject *name, Py_ssize_t count, PyObject **args)
{
    PyObject *call[6] = {engine};
    for (Py_ssize_t i = 0; i < count; i++) {
        call[i + 1] = args[i];
    }
    PyObject *done = PyObject_VectorcallMethod(name, call, (size_t)(count + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

static int start_step(PyObject *engine, PyObject *offer, PyObject *index, PyObject *now, PyObject *out);

/* the profile and zone a send looks at (as Engine._send_step finds them); new references */
static int
profile_and_zone(PyObject *engine, PyObject *subscriber, PyObject **profile, PyObject **zone)
{
    PyObject *found = get_slot(subscriber, sub_profile, "profile");
    if (found == NULL) {
        return -1;
    }
    if (found == Py_None) {
        *profile = Py_NewRef(unknown_profile);
        *zone = engine_attr(engine, s_zone);
        return *zone == NULL ? -1 : 0;
    }
    *profile = Py_NewRef(found);
    PyObject *own = Py_IS_TYPE(found, profile_type) ? Py_XNewRef(SLOT(found, prof_timezone))
                                                    : PyObject_GetAttr(found, s_timezone);
    if (own == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_AttributeError, "Profile without timezone");
        }
        return -1;
    }
    int named = PyObject_IsTrue(own);
    Py_DECREF(own);
    if (named < 0) {
        return -1;
    }
    if (named) {
        PyObject *args[2] = {engine, found};
        *zone = PyObject_VectorcallMethod(s_profile_zone, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    } else {
        *zone = engine_attr(engine, s_zone);
    }
    return *zone == NULL ? -1 : 0;
}

/* Engine._send_step for a step whose campaign has no eligibility rule, a handset that can take it and
 * a resolved contact plan; anything else is the engine's own method. 0 or -1 */
static int
send_step(PyObject *engine, PyObject *offer, PyObject *step, PyObject *now, PyObject *out)
{
    PyObject *subscriber = get_slot(offer, offer_offsets[O_SUBSCRIBER], "subscriber");
    PyObject *campaign = subscriber == NULL ? NULL : get_slot(offer, offer_offsets[O_CAMPAIGN], "campaign");
    if (campaign == NULL) {
        return -1;
    }
    if (!Py_IS_TYPE(subscriber, subscriber_type) || !Py_IS_TYPE(campaign, campaign_type) ||
        !Py_IS_TYPE(step, step_type) || SLOT(campaign, camp_eligible) != Py_None || SLOT(step, st_plan) == NULL ||
        SLOT(step, st_plan) == Py_None) {
        PyObject *args[4] = {offer, step, now, out};
        return call_engine(engine, s_send_step, 4, args);
    }
    PyObject *profile = NULL, *zone = NULL, *policy = NULL, *verdict = NULL, *text = NULL, *command_id = NULL,
             *days_left = NULL, *shown = NULL, *key_tuple = NULL, *package_ids = NULL, *latency = NULL,
             *version = NULL, *expires_at = NULL, *deadline = NULL;
    int result = -1;
    if (profile_and_zone(engine, subscriber, &profile, &zone) < 0) {
        goto done;
    }
    PyObject *stk = SLOT(step, st_stk);
    int is_stk = stk == NULL ? -1 : PyObject_IsTrue(stk);
    if (is_stk < 0) {
        goto done;
    }
    if (is_stk) {
        PyObject *capable = Py_IS_TYPE(profile, profile_type) ? Py_XNewRef(SLOT(profile, prof_stk_capable)) : NULL;
        int can = capable == NULL ? 0 : PyObject_IsTrue(capable);
        Py_XDECREF(capable);
        if (can <= 0) { /* no SIM toolkit (or not known here): the engine's own path records it */
            PyErr_Clear();
            PyObject *args[4] = {offer, step, now, out};
            result = call_engine(engine, s_send_step, 4, args);
            goto done;
        }
    }
    PyObject *msisdn = get_slot(offer, offer_offsets[O_MSISDN], "msisdn");
    PyObject *key = msisdn == NULL ? NULL : get_slot(offer, offer_offsets[O_OFFER_ID], "offer_id");
    if (key == NULL) {
        goto done;
    }
    policy = engine_attr(engine, s_policy);
    if (policy == NULL) {
        goto done;
    }
    verdict = contact_planned(policy, SLOT(step, st_plan), msisdn, now, zone);
    if (verdict == NULL) {
        goto done;
    }
    if (verdict != allowed) {
        PyObject *call[6] = {engine, offer, step, verdict, now, out};
        PyObject *handled =
            PyObject_VectorcallMethod(s_not_allowed, call, 6 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        int is_handled = handled == NULL ? -1 : PyObject_IsTrue(handled);
        Py_XDECREF(handled);
        if (is_handled != 0) {
            result = is_handled < 0 ? -1 : 0;
            goto done;
        }
    }
    PyObject *offered = get_slot(offer, offer_offsets[O_OFFERED], "offered");
    PyObject *mode = offered == NULL ? NULL : get_slot(step, st_mode, "mode");
    if (mode == NULL) {
        goto done;
    }
    if (!Py_IS_TYPE(offered, option_set_type)) {
        PyErr_SetString(PyExc_TypeError, "_Offer.offered must be an _OptionSet");
        goto done;
    }
    PyObject *offered_options = get_slot(offered, os_options, "options");
    if (offered_options == NULL) {
        goto done;
    }
    int any = PyObject_IsTrue(offered_options);
    if (any < 0) {
        goto done;
    }
    int is_none = PyUnicode_Check(mode) ? PyUnicode_Compare(mode, s_none) == 0
                                         : PyObject_RichCompareBool(mode, s_none, Py_EQ);
    if (is_none < 0 || PyErr_Occurred()) {
        goto done;
    }
    if (is_none || !any) {
        shown = Py_NewRef(no_options);
    } else {
        int is_largest = PyObject_RichCompareBool(mode, s_largest_mode, Py_EQ);
        if (is_largest < 0) {
            goto done;
        }
        if (is_largest) {
            PyObject *largest = get_slot(offered, os_largest, "largest");
            if (largest == NULL) {
                goto done;
            }
            int have = PyObject_IsTrue(largest); /* `offered.largest or self._largest(offered)` */
            if (have < 0) {
                goto done;
            }
            if (have) {
                shown = Py_NewRef(largest);
            } else {
                PyObject *args[2] = {engine, offered};
                shown = PyObject_VectorcallMethod(s_largest, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            }
        } else {
            shown = Py_NewRef(offered);
        }
    }
    if (shown == NULL) {
        goto done;
    }
    if (!Py_IS_TYPE(shown, option_set_type)) {
        PyErr_SetString(PyExc_TypeError, "the options shown must be an _OptionSet");
        goto done;
    }
    PyObject *options = get_slot(shown, os_options, "options");
    PyObject *trigger = options == NULL ? NULL : get_slot(offer, offer_offsets[O_TRIGGER], "trigger");
    if (trigger == NULL) {
        goto done;
    }
    {
        /* trigger.attributes.get("days_left", "") */
        PyObject *attributes = Py_IS_TYPE(trigger, trigger_type) ? SLOT(trigger, tr_attributes) : NULL;
        if (attributes == no_attributes) {
            days_left = Py_NewRef(empty_text);
        } else {
            PyObject *owned = attributes != NULL ? Py_NewRef(attributes) : PyObject_GetAttrString(trigger, "attributes");
            if (owned == NULL) {
                goto done;
            }
            PyObject *args[3] = {owned, s_days_left, empty_text};
            days_left = PyObject_VectorcallMethod(s_get, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            Py_DECREF(owned);
            if (days_left == NULL) {
                goto done;
            }
        }
    }
    {
        /* Engine._text: its cache, else the method (which renders and caches) */
        PyObject *texts = engine_attr(engine, s_texts);
        if (texts == NULL) {
            goto done;
        }
        key_tuple = PyTuple_Pack(3, step, shown, days_left);
        if (key_tuple == NULL) {
            Py_DECREF(texts);
            goto done;
        }
        text = PyDict_CheckExact(texts) ? Py_XNewRef(PyDict_GetItemWithError(texts, key_tuple)) : NULL;
        Py_DECREF(texts);
        if (text == NULL) {
            if (PyErr_Occurred()) {
                goto done;
            }
            PyObject *args[4] = {engine, step, shown, days_left};
            text = PyObject_VectorcallMethod(s_text, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            if (text == NULL) {
                goto done;
            }
        }
    }
    PyObject *suffix = get_slot(step, st_suffix, "suffix");
    if (suffix == NULL || (command_id = PyUnicode_Concat(key, suffix)) == NULL) {
        goto done;
    }
    PyObject *campaign_id = get_slot(campaign, camp_id, "id");
    if (campaign_id == NULL) {
        goto done;
    }
    {
        PyObject *command;
        if (is_stk) {
            PyObject *style = get_slot(step, st_style, "style");
            if (style == NULL) {
                goto done;
            }
            set_slot(offer, offer_offsets[O_PUSHED], shown);
            PyObject *args[7] = {command_id, key, msisdn, campaign_id, style, options, text};
            command = PyObject_Vectorcall(push_stk_builder, args, 7, NULL);
        } else {
            int have = PyObject_IsTrue(options);
            PyObject *promotional = get_slot(step, st_promotional, "promotional");
            if (have < 0 || promotional == NULL) {
                goto done;
            }
            PyObject *args[6] = {command_id, msisdn, campaign_id, text, have ? key : Py_None, promotional};
            command = PyObject_Vectorcall(send_sms_builder, args, 6, NULL);
        }
        if (command == NULL) {
            goto done;
        }
        untrack_command(out, command);
        int failed = PyList_Append(out, command);
        Py_DECREF(command);
        if (failed < 0) {
            goto done;
        }
    }
    {
        PyObject *shown_ids = get_slot(shown, os_package_ids, "package_ids");
        PyObject *event_time = shown_ids == NULL ? NULL : PyObject_GetAttr(trigger, s_event_time);
        if (event_time == NULL) {
            goto done;
        }
        package_ids = PySequence_List(shown_ids);
        latency = package_ids == NULL ? NULL : PyNumber_Subtract(now, event_time);
        Py_DECREF(event_time);
        version = latency == NULL                   ? NULL
                  : Py_IS_TYPE(policy, policy_type) ? Py_XNewRef(SLOT(policy, pol_version))
                                                    : PyObject_GetAttr(policy, s_version);
        PyObject *channel = SLOT(step, st_channel_value), *index = SLOT(step, st_index);
        if (version == NULL || channel == NULL || index == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_AttributeError, "_Step without channel_value or index");
            }
            goto done;
        }
        PyObject *variant = get_slot(offer, offer_offsets[O_VARIANT], "variant");
        PyObject *pairs[12] = {s_channel, channel,      s_step,    index,   s_command_id,     command_id,
                               s_options, package_ids, s_latency, latency, s_policy_version, version};
        if (variant == NULL || append_record(out, kind_contact, now, msisdn, campaign_id, variant, key, 6, pairs) < 0) {
            goto done;
        }
    }
    int have = PyObject_IsTrue(options);
    if (have < 0) {
        goto done;
    }
    if (!have) { /* informational: no answer to wait for */
        PyObject *index = SLOT(step, st_index);
        PyObject *next = index == NULL ? NULL : PyNumber_Add(index, one_int);
        if (next == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_AttributeError, "_Step without index");
            }
            goto done;
        }
        result = start_step(engine, offer, next, now, out);
        Py_DECREF(next);
        goto done;
    }
    expires_at = Py_XNewRef(get_slot(offer, offer_offsets[O_EXPIRES_AT], "expires_at"));
    if (expires_at == NULL) {
        goto done;
    }
    if (expires_at == Py_None) {
        PyObject *after = get_slot(campaign, camp_expires_after, "expires_after");
        Py_SETREF(expires_at, after == NULL ? NULL : PyNumber_Add(now, after));
        if (expires_at == NULL) {
            goto done;
        }
        set_slot(offer, offer_offsets[O_EXPIRES_AT], expires_at);
    }
    set_slot(offer, off_state, state_awaiting);
    set_slot(offer, offer_offsets[O_DELIVERED], Py_False);
    PyObject *cap = get_slot(step, st_hard_cap, "hard_cap");
    deadline = cap == NULL ? NULL : PyNumber_Add(now, cap);
    if (deadline == NULL) {
        goto done;
    }
    int sooner = compare_numbers(expires_at, deadline, Py_LT); /* min(): the first of equals */
    if (sooner < 0) {
        goto done;
    }
    result = arm(engine, offer, key, sooner ? expires_at : deadline);
done:
    Py_XDECREF(profile);
    Py_XDECREF(zone);
    Py_XDECREF(policy);
    Py_XDECREF(verdict);
    Py_XDECREF(text);
    Py_XDECREF(command_id);
    Py_XDECREF(days_left);
    Py_XDECREF(shown);
    Py_XDECREF(key_tuple);
    Py_XDECREF(package_ids);
    Py_XDECREF(latency);
    Py_XDECREF(version);
    Py_XDECREF(expires_at);
    Py_XDECREF(deadline);
    return result;
}

/* Engine._start_step: a step that is due now is sent here; the rest (past the last step, an `after`
 * still to wait) is the engine's own method. 0 or -1 */
static int
start_step(PyObject *engine, PyObject *offer, PyObject *index, PyObject *now, PyObject *out)
{
    PyObject *campaign = get_slot(offer, offer_offsets[O_CAMPAIGN], "campaign");
    if (campaign == NULL) {
        return -1;
    }
    PyObject *steps = Py_IS_TYPE(campaign, campaign_type) ? SLOT(campaign, camp_steps) : NULL;
    Py_ssize_t at = PyLong_Check(index) ? PyLong_AsSsize_t(index) : -1;
    if (at == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    PyObject *step = NULL;
    if (steps != NULL && PyTuple_CheckExact(steps) && at >= 0 && at < PyTuple_GET_SIZE(steps)) {
        step = PyTuple_GET_ITEM(steps, at);
        PyObject *after = Py_IS_TYPE(step, step_type) ? SLOT(step, st_after) : NULL;
        PyObject *ready = get_slot(offer, offer_offsets[O_STEP_READY], "step_ready");
        if (ready == NULL) {
            return -1;
        }
        int waits = after == NULL ? 1 : compare_numbers(after, zero_int, Py_GT);
        if (waits < 0) {
            return -1;
        }
        if (waits) {
            int is_ready = PyObject_IsTrue(ready);
            if (is_ready < 0) {
                return -1;
            }
            if (!is_ready) {
                step = NULL; /* the `after` is still to wait: the engine arms it */
            }
        }
    }
    if (step == NULL) {
        PyObject *args[4] = {offer, index, now, out};
        return call_engine(engine, s_start_step, 4, args);
    }
    Py_INCREF(step);
    set_slot(offer, offer_offsets[O_STEP], index);
    set_slot(offer, offer_offsets[O_STEP_READY], Py_False);
    int result = send_step(engine, offer, step, now, out);
    Py_DECREF(step);
    return result;
}

/* _Deadlines.pop() -> (when, key) as new references; 0 or -1 */
static int
deadlines_pop(PyObject *deadlines, PyObject **when, PyObject **key, PyObject *offers, PyObject *states)
{
    if (!Py_IS_TYPE(deadlines, deadlines_type)) {
        PyObject *args[1] = {deadlines};
        PyObject *pair = PyObject_VectorcallMethod(s_pop, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (pair == NULL) {
            return -1;
        }
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_TypeError, "_Deadlines.pop() must give (when, key)");
            return -1;
        }
        *when = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
        *key = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
        Py_DECREF(pair);
        return 0;
    }
    PyObject *times = get_slot(deadlines, dl_times, "times");
    PyObject *ids = times == NULL ? NULL : get_slot(deadlines, dl_ids, "_ids");
    PyObject *unsorted = ids == NULL ? NULL : get_slot(deadlines, dl_unsorted, "_unsorted");
    if (unsorted == NULL) {
        return -1;
    }
    if (!PyList_CheckExact(times) || PyList_GET_SIZE(times) == 0 || !PyDict_CheckExact(ids) || !PySet_Check(unsorted)) {
        PyErr_SetString(PyExc_TypeError, "_Deadlines: a non-empty list of times, a dict of ids, a set expected");
        return -1;
    }
    PyObject *first = Py_NewRef(PyList_GET_ITEM(times, 0));
    PyObject *found = PyDict_GetItemWithError(ids, first);
    if (found == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_KeyError, first);
        }
        Py_DECREF(first);
        return -1;
    }
    if (PyUnicode_Check(found)) {
        *key = Py_NewRef(found);
    } else {
        if (!PyList_Check(found)) {
            Py_DECREF(first);
            PyErr_SetString(PyExc_TypeError, "_Deadlines ids must be a str or a list");
            return -1;
        }
        int stale = PySet_Contains(unsorted, first);
        if (stale < 0) {
            Py_DECREF(first);
            return -1;
        }
        if (stale) { /* found.sort(reverse=True): taken from the end, smallest first */
            Py_INCREF(found);
            PyObject *kwnames = PyTuple_Pack(1, s_reverse);
            PyObject *args[2] = {found, Py_True};
            PyObject *sorted = kwnames == NULL ? NULL
                                               : PyObject_VectorcallMethod(s_sort, args,
                                                                           1 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
            Py_XDECREF(kwnames);
            Py_XDECREF(sorted);
            Py_DECREF(found);
            if (sorted == NULL || PySet_Discard(unsorted, first) < 0) {
                Py_DECREF(first);
                return -1;
            }
        }
        Py_ssize_t size = PyList_GET_SIZE(found);
        if (size == 0) {
            Py_DECREF(first);
            PyErr_SetString(PyExc_IndexError, "pop from empty list");
            return -1;
        }
        fetch_ahead(found, size, offers, states);
        *key = Py_NewRef(PyList_GET_ITEM(found, size - 1));
        if (PyList_SetSlice(found, size - 1, size, NULL) < 0) {
            Py_CLEAR(*key);
            Py_DECREF(first);
            return -1;
        }
        if (size > 1) {
            *when = first;
            return 0;
        }
    }
    PyObject *args[1] = {times};
    PyObject *popped = PyObject_Vectorcall(heappop, args, 1, NULL);
    Py_XDECREF(popped);
    if (popped == NULL || PyDict_DelItem(ids, first) < 0) {
        Py_CLEAR(*key);
        Py_DECREF(first);
        return -1;
    }
    *when = first;
    return 0;
}

/* Engine._tick: every offer whose deadline has come, in deadline order; 0 or -1 */
static int
tick(PyObject *engine, PyObject *now, PyObject *out)
{
    PyObject *deadlines = engine_attr(engine, s_deadlines);
    PyObject *offers = deadlines == NULL ? NULL : engine_attr(engine, s_offers);
    PyObject *times = NULL, *states = NULL;
    int result = -1;
    if (offers == NULL) {
        goto done;
    }
    {
        /* the contact policy's state, only to fetch ahead what the send steps will read */
        PyObject **dict = _PyObject_GetDictPtr(engine);
        PyObject *policy = dict != NULL && *dict != NULL && PyDict_CheckExact(*dict)
                               ? PyDict_GetItemWithError(*dict, s_policy) /* borrowed; no lookup beyond it */
                               : NULL;
        if (policy == NULL && PyErr_Occurred()) {
            goto done;
        }
        states = policy != NULL && Py_IS_TYPE(policy, policy_type) ? Py_XNewRef(SLOT(policy, pol_state)) : NULL;
    }
    times = Py_IS_TYPE(deadlines, deadlines_type) ? Py_XNewRef(SLOT(deadlines, dl_times))
                                                  : PyObject_GetAttrString(deadlines, "times");
    if (times == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_AttributeError, "_Deadlines without times");
        }
        goto done;
    }
    if (!PyList_CheckExact(times) || !PyDict_CheckExact(offers)) {
        PyErr_SetString(PyExc_TypeError, "Engine._deadlines.times must be a list and Engine._offers a dict");
        goto done;
    }
    for (;;) {
        if (PyList_GET_SIZE(times) == 0) {
            break;
        }
        int come = compare_numbers(PyList_GET_ITEM(times, 0), now, Py_LE);
        if (come < 0) {
            goto done;
        }
        if (!come) {
            break;
        }
        PyObject *when, *key;
        if (deadlines_pop(deadlines, &when, &key, offers, states) < 0) {
            goto done;
        }
        PyObject *offer = PyDict_GetItemWithError(offers, key);
        int failed = 0;
        if (offer == NULL) {
            failed = PyErr_Occurred() != NULL;
        } else if (!Py_IS_TYPE(offer, offer_type)) {
            PyErr_SetString(PyExc_TypeError, "Engine._offers must hold _Offer objects");
            failed = 1;
        } else {
            Py_INCREF(offer);
            PyObject *queued = SLOT(offer, off_queued);
            int live = queued == NULL ? -1 : compare_numbers(queued, when, Py_EQ);
            if (queued == NULL) {
                PyErr_SetString(PyExc_AttributeError, "_Offer without queued");
            }
            if (live == 1) {
                set_slot(offer, off_queued, Py_None);
                PyObject *deadline = Py_XNewRef(SLOT(offer, off_deadline));
                if (deadline == NULL) {
                    PyErr_SetString(PyExc_AttributeError, "_Offer without deadline");
                    failed = 1;
                } else if (deadline != Py_None) {
                    int moved = compare_numbers(deadline, when, Py_NE);
                    if (moved < 0) {
                        failed = 1;
                    } else if (moved) { /* its deadline moved later: requeue it there */
                        set_slot(offer, off_queued, deadline);
                        failed = deadlines_push(deadlines, deadline, key) < 0;
                    } else {
                        set_slot(offer, off_deadline, Py_None);
                        /* Engine._due: an awaited step's wait is over (here); the other states there */
                        PyObject *state = SLOT(offer, off_state);
                        if (state == state_awaiting) {
                            PyObject *expires = SLOT(offer, offer_offsets[O_EXPIRES_AT]);
                            int over = expires == NULL ? -1
                                       : expires == Py_None ? 0
                                                            : compare_numbers(now, expires, Py_GE);
                            PyObject *step = SLOT(offer, offer_offsets[O_STEP]);
                            if (over < 0 || step == NULL) {
                                if (!PyErr_Occurred()) {
                                    PyErr_SetString(PyExc_AttributeError, "_Offer without expires_at or step");
                                }
                                failed = 1;
                            } else if (over) {
                                PyObject *call[5] = {engine, offer, s_expired, now, out};
                                PyObject *done = PyObject_VectorcallMethod(
                                    s_close, call, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
                                failed = done == NULL;
                                Py_XDECREF(done);
                            } else {
                                PyObject *next = PyNumber_Add(step, one_int);
                                failed = next == NULL || start_step(engine, offer, next, now, out) < 0;
                                Py_XDECREF(next);
                            }
                        } else {
                            PyObject *args[3] = {offer, now, out};
                            failed = call_engine(engine, s_due, 3, args) < 0;
                        }
                    }
                }
                Py_XDECREF(deadline);
            } else if (live < 0) {
                failed = 1;
            }
            Py_DECREF(offer);
        }
        Py_DECREF(when);
        Py_DECREF(key);
        if (failed) {
            goto done;
        }
    }
    result = 0;
done:
    Py_XDECREF(deadlines);
    Py_XDECREF(offers);
    Py_XDECREF(times);
    Py_XDECREF(states);
    return result;
}

/* --- credit scores and delivery receipts (Engine._credit_scored, _size, _delivered) ------------- */

/* the key and tag of "<key>:<tag>" (str.rpartition(":")): new references, or -1 */
static int
split_id(PyObject *id, PyObject **key, PyObject **tag)
{
    if (!PyUnicode_Check(id)) {
        PyErr_SetString(PyExc_TypeError, "an id must be a str");
        return -1;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(id);
    Py_ssize_t colon = PyUnicode_FindChar(id, ':', 0, length, -1);
    if (colon == -2) {
        return -1;
    }
    if (colon < 0) { /* ("", "", id) */
        *key = PyUnicode_New(0, 0);
        *tag = Py_NewRef(id);
    } else {
        *key = PyUnicode_Substring(id, 0, colon);
        *tag = PyUnicode_Substring(id, colon + 1, length);
    }
    if (*key == NULL || *tag == NULL) {
        Py_CLEAR(*key);
        Py_CLEAR(*tag);
        return -1;
    }
    return 0;
}

/* The open offer a "<key>:<tag>" id names (the lookup of Engine._scoring and _awaited): 1 with
 * *offer (an _Offer) and *key, *tag, all new references, or with *offer NULL when no open offer has
 * that key; 0 when the engine's objects are not of its own classes (nothing changed); -1 error */
static int
offer_named(PyObject *engine, PyObject *id, PyObject **key, PyObject **tag, PyObject **offer)
{
    PyObject *offers = engine_attr(engine, s_offers);
    if (offers == NULL) {
        return -1;
    }
    int result = 0;
    if (PyDict_CheckExact(offers)) {
        result = -1;
        if (split_id(id, key, tag) == 0) {
            *offer = Py_XNewRef(PyDict_GetItemWithError(offers, *key));
            if (*offer != NULL && !Py_IS_TYPE(*offer, offer_type)) {
                Py_CLEAR(*offer);
                result = 0;
            } else {
                result = *offer == NULL && PyErr_Occurred() ? -1 : 1;
            }
        }
    }
    Py_DECREF(offers);
    return result;
}

/* Engine._credit_scored with _size: 1 done, 0 not native (the engine's method), -1 error */
static int
credit_scored(PyObject *engine, PyObject *event, PyObject *now, PyObject *out)
{
    PyObject *request_id = SLOT(event, cs_request_id), *balance = SLOT(event, cs_balance);
    PyObject *credit = SLOT(event, cs_credit_limit);
    if (request_id == NULL || balance == NULL || credit == NULL || !PyUnicode_CheckExact(request_id)) {
        return 0;
    }
    PyObject *key = NULL, *tag = NULL, *offer = NULL, *text_balance = NULL, *text_credit = NULL;
    int result = offer_named(engine, request_id, &key, &tag, &offer);
    if (result <= 0 || offer == NULL) {
        goto done; /* (no offer: late, after the timeout, or unknown) */
    }
    result = -1;
    int scored = PyUnicode_Compare(tag, s_score_tag);
    if (scored == -1 && PyErr_Occurred()) {
        goto done;
    }
    if (scored != 0 || SLOT(offer, off_state) != state_scoring) {
        result = 1; /* not a score request, or the offer went on without it */
        goto done;
    }
    PyObject *campaign = SLOT(offer, offer_offsets[O_CAMPAIGN]);
    if (campaign == NULL || !Py_IS_TYPE(campaign, campaign_type) || SLOT(campaign, camp_packages_prices) == NULL ||
        SLOT(campaign, camp_payment) == NULL || SLOT(campaign, camp_sized) == NULL ||
        !PyTuple_CheckExact(SLOT(campaign, camp_packages_prices)) || !PyDict_CheckExact(SLOT(campaign, camp_sized)) ||
        !PyUnicode_Check(SLOT(campaign, camp_payment)) || PyTuple_GET_SIZE(SLOT(campaign, camp_packages_prices)) > 30) {
        result = 0; /* (3**30 patterns would not fit here: the engine's own path for a catalogue that size) */
        goto done;
    }
    /* every check is done: from here on this is the engine's path */
    text_balance = PyObject_Str(balance);
    text_credit = text_balance == NULL ? NULL : PyObject_Str(credit);
    if (text_credit == NULL) {
        goto done;
    }
    {
        PyObject *pairs[4] = {s_balance, text_balance, s_credit_limit, text_credit};
        PyObject *variant = SLOT(offer, offer_offsets[O_VARIANT]), *msisdn = SLOT(offer, offer_offsets[O_MSISDN]);
        PyObject *campaign_id = SLOT(campaign, camp_id);
        if (variant == NULL || msisdn == NULL || campaign_id == NULL) {
            PyErr_SetString(PyExc_AttributeError, "_Offer or _Campaign with a field never set");
            goto done;
        }
        if (append_record(out, kind_scored, now, msisdn, campaign_id, variant, key, 2, pairs) < 0) {
            goto done;
        }
    }
    /* _size: the payment of each package (0 none, 1 balance, 2 credit) as the digits of one number */
    PyObject *prices = SLOT(campaign, camp_packages_prices), *payment = SLOT(campaign, camp_payment);
    int on_credit = PyUnicode_Compare(payment, s_credit) == 0;
    int on_balance = PyUnicode_Compare(payment, s_balance_word) == 0;
    long long pattern = 0;
    Py_ssize_t count = PyTuple_GET_SIZE(prices);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *price = PyTuple_GET_ITEM(prices, i);
        pattern *= 3;
        if (balance == Py_None) { /* no scoring at all: billing decides at activation */
            pattern += on_credit ? 2 : 1;
            continue;
        }
        if (!on_credit) {
            int fits = PyObject_RichCompareBool(price, balance, Py_LE);
            if (fits < 0) {
                goto done;
            }
            if (fits) {
                pattern += 1;
                continue;
            }
        }
        if (!on_balance && credit != Py_None) {
            int fits = PyObject_RichCompareBool(price, credit, Py_LE);
            if (fits < 0) {
                goto done;
            }
            if (fits) {
                pattern += 2;
            }
        }
    }
    PyObject *pattern_obj = PyLong_FromLongLong(pattern);
    if (pattern_obj == NULL) {
        goto done;
    }
    PyObject *offered = Py_XNewRef(PyDict_GetItemWithError(SLOT(campaign, camp_sized), pattern_obj));
    if (offered == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(pattern_obj);
            goto done;
        }
        PyObject *args[3] = {engine, campaign, pattern_obj};
        offered = PyObject_VectorcallMethod(s_sized_method, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_DECREF(pattern_obj);
    if (offered == NULL) {
        goto done;
    }
    set_slot(offer, offer_offsets[O_OFFERED], offered);
    PyObject *options = Py_IS_TYPE(offered, option_set_type) ? SLOT(offered, os_options) : NULL;
    Py_DECREF(offered);
    int any = options == NULL ? -1 : PyObject_IsTrue(options);
    if (any < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "_Campaign.sized must hold _OptionSet objects");
        }
        goto done;
    }
    if (!any) {
        PyObject *kwnames = PyTuple_Pack(1, s_reason_kw);
        PyObject *call[6] = {engine, offer, s_suppressed_word, now, out, s_nothing_affordable};
        PyObject *closed = kwnames == NULL ? NULL
                                           : PyObject_VectorcallMethod(s_close, call, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                                       kwnames);
        Py_XDECREF(kwnames);
        Py_XDECREF(closed);
        result = closed == NULL ? -1 : 1;
        goto done;
    }
    result = start_step(engine, offer, zero_int, now, out) < 0 ? -1 : 1;
done:
    Py_XDECREF(key);
    Py_XDECREF(tag);
    Py_XDECREF(offer);
    Py_XDECREF(text_balance);
    Py_XDECREF(text_credit);
    return result;
}

/* Engine._delivered: 1 done, 0 not native (the engine's method), -1 error */
static int
delivered(PyObject *engine, PyObject *event, PyObject *now, PyObject *out)
{
    PyObject *command_id = SLOT(event, dr_command_id), *flag = SLOT(event, dr_delivered);
    PyObject *state = SLOT(event, dr_state);
    if (command_id == NULL || flag == NULL || state == NULL || !PyUnicode_CheckExact(command_id)) {
        return 0;
    }
    PyObject *key = NULL, *tag = NULL, *offer = NULL, *step_text = NULL, *step = NULL, *deadline = NULL;
    int result = offer_named(engine, command_id, &key, &tag, &offer);
    if (result <= 0 || offer == NULL) {
        goto done; /* (no offer: a closed one, or not one of ours) */
    }
    result = -1;
    if (SLOT(offer, off_state) != state_awaiting) {
        result = 1; /* a receipt for an earlier step, a confirmation, or nothing awaited */
        goto done;
    }
    PyObject *index = SLOT(offer, offer_offsets[O_STEP]), *campaign = SLOT(offer, offer_offsets[O_CAMPAIGN]);
    PyObject *expires_at = SLOT(offer, offer_offsets[O_EXPIRES_AT]);
    if (index == NULL || campaign == NULL || expires_at == NULL || expires_at == Py_None || !PyLong_CheckExact(index) ||
        !Py_IS_TYPE(campaign, campaign_type) || SLOT(campaign, camp_steps) == NULL ||
        !PyTuple_CheckExact(SLOT(campaign, camp_steps))) {
        result = 0;
        goto done;
    }
    step_text = PyObject_Str(index);
    if (step_text == NULL) {
        goto done;
    }
    int same = PyUnicode_Compare(tag, step_text);
    if (same == -1 && PyErr_Occurred()) {
        goto done;
    }
    if (same != 0) {
        result = 1; /* a receipt for an earlier step */
        goto done;
    }
    Py_ssize_t at = PyLong_AsSsize_t(index);
    if (at < 0 || at >= PyTuple_GET_SIZE(SLOT(campaign, camp_steps))) {
        if (at == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        result = 0;
        goto done;
    }
    step = Py_NewRef(PyTuple_GET_ITEM(SLOT(campaign, camp_steps), at));
    if (!Py_IS_TYPE(step, step_type) || SLOT(step, st_wait) == NULL) {
        result = 0;
        goto done;
    }
    int is_delivered = PyObject_IsTrue(flag);
    if (is_delivered < 0) {
        goto done;
    }
    {
        PyObject *variant = SLOT(offer, offer_offsets[O_VARIANT]), *msisdn = SLOT(offer, offer_offsets[O_MSISDN]);
        PyObject *campaign_id = SLOT(campaign, camp_id);
        if (variant == NULL || msisdn == NULL || campaign_id == NULL) {
            PyErr_SetString(PyExc_AttributeError, "_Offer or _Campaign with a field never set");
            goto done;
        }
        PyObject *pairs[6] = {s_step, index, s_delivered, is_delivered ? Py_True : Py_False, s_state_key, state};
        if (append_record(out, kind_delivered, now, msisdn, campaign_id, variant, key, 3, pairs) < 0) {
            goto done;
        }
    }
    if (is_delivered) {
        set_slot(offer, offer_offsets[O_DELIVERED], Py_True);
        deadline = PyNumber_Add(now, SLOT(step, st_wait));
        if (deadline == NULL) {
            goto done;
        }
        int sooner = compare_numbers(expires_at, deadline, Py_LT);
        if (sooner < 0) {
            goto done;
        }
        result = arm(engine, offer, key, sooner ? expires_at : deadline) < 0 ? -1 : 1;
        goto done;
    }
    PyObject *next = PyNumber_Add(index, one_int);
    if (next == NULL) {
        goto done;
    }
    result = start_step(engine, offer, next, now, out) < 0 ? -1 : 1;
    Py_DECREF(next);
done:
    Py_XDECREF(key);
    Py_XDECREF(tag);
    Py_XDECREF(offer);
    Py_XDECREF(step_text);
    Py_XDECREF(step);
    Py_XDECREF(deadline);
    return result;
}

/* --- responses and fulfilment (Engine._response, _activation, _close) ---------------------------- */

/* Engine._fields(option): the engine's cache, else the method; new reference */
static PyObject *
fields_of(PyObject *engine, PyObject *option)
{
    PyObject *cache = engine_attr(engine, s_option_fields);
    if (cache == NULL) {
        return NULL;
    }
    PyObject *fields = NULL;
    if (PyDict_CheckExact(cache)) {
        PyObject *id = PyLong_FromVoidPtr(option);
        PyObject *kept = id == NULL ? NULL : PyDict_GetItemWithError(cache, id);
        Py_XDECREF(id);
        if (kept != NULL && PyTuple_CheckExact(kept) && PyTuple_GET_SIZE(kept) == 2) {
            fields = Py_NewRef(PyTuple_GET_ITEM(kept, 1));
        }
        if (PyErr_Occurred()) {
            Py_DECREF(cache);
            return NULL;
        }
    }
    Py_DECREF(cache);
    if (fields == NULL) {
        PyObject *args[2] = {engine, option};
        fields = PyObject_VectorcallMethod(s_fields_method, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    return fields;
}

/* template.format_map(fields); new reference */
static PyObject *
render(PyObject *texts, PyObject *name, PyObject *fields)
{
    PyObject *template = PyObject_GetAttr(texts, name);
    if (template == NULL) {
        return NULL;
    }
    PyObject *text = PyObject_CallMethodOneArg(template, s_format_map, fields);
    Py_DECREF(template);
    return text;
}

/* Engine._close(offer, outcome, now, out) without a reason: 0 or -1 */
static int
close_offer(PyObject *engine, PyObject *offer, PyObject *outcome, PyObject *now, PyObject *out)
{
    PyObject *key = SLOT(offer, offer_offsets[O_OFFER_ID]), *subscriber = SLOT(offer, offer_offsets[O_SUBSCRIBER]);
    PyObject *campaign = SLOT(offer, offer_offsets[O_CAMPAIGN]), *variant = SLOT(offer, offer_offsets[O_VARIANT]);
    PyObject *offered = SLOT(offer, offer_offsets[O_OFFERED]), *msisdn = SLOT(offer, offer_offsets[O_MSISDN]);
    if (key == NULL || subscriber == NULL || campaign == NULL || variant == NULL || offered == NULL || msisdn == NULL ||
        !Py_IS_TYPE(subscriber, subscriber_type) || !Py_IS_TYPE(campaign, campaign_type) ||
        !Py_IS_TYPE(offered, option_set_type) || SLOT(subscriber, sub_offers) == NULL ||
        SLOT(subscriber, sub_closed) == NULL || !PyTuple_CheckExact(SLOT(subscriber, sub_offers)) ||
        !PyTuple_CheckExact(SLOT(subscriber, sub_closed)) || SLOT(campaign, camp_id) == NULL ||
        SLOT(offered, os_names) == NULL) {
        PyObject *call[5] = {engine, offer, outcome, now, out};
        PyObject *done = PyObject_VectorcallMethod(s_close, call, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    Py_INCREF(key);
    Py_INCREF(offer);
    int result = -1;
    PyObject *offers = engine_attr(engine, s_offers), *kept = NULL, *entry = NULL, *closed = NULL;
    if (offers == NULL || PyObject_DelItem(offers, key) < 0) {
        goto done;
    }
    set_slot(offer, off_deadline, Py_None);
    PyObject *open = SLOT(subscriber, sub_offers);
    Py_ssize_t size = PyTuple_GET_SIZE(open), count = 0;
    kept = PyTuple_New(size);
    if (kept == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = PyTuple_GET_ITEM(open, i);
        int other = PyObject_RichCompareBool(item, key, Py_NE);
        if (other < 0) {
            goto done;
        }
        if (other) {
            PyTuple_SET_ITEM(kept, count++, Py_NewRef(item));
        }
    }
    if (count == 0) {
        Py_SETREF(kept, PyTuple_New(0)); /* () */
    } else if (count != size && _PyTuple_Resize(&kept, count) < 0) {
        goto done;
    }
    untrack_atomic(kept);
    set_slot(subscriber, sub_offers, kept);
    PyObject *campaign_id = SLOT(campaign, camp_id);
    entry = PyTuple_Pack(5, key, outcome, SLOT(offered, os_names), campaign_id, variant);
    if (entry == NULL) {
        goto done;
    }
    PyObject *before = SLOT(subscriber, sub_closed);
    Py_ssize_t many = PyTuple_GET_SIZE(before);
    closed = tuple_plus(before, many > recent_closed - 1 ? many - (recent_closed - 1) : 0, entry);
    if (closed == NULL) {
        goto done;
    }
    untrack_atomic(entry);
    untrack_atomic(closed);
    set_slot(subscriber, sub_closed, closed);
    PyObject *pairs[2] = {s_outcome, outcome};
    result = append_record(out, kind_closed, now, msisdn, campaign_id, variant, key, 1, pairs);
done:
    Py_XDECREF(offers);
    Py_XDECREF(kept);
    Py_XDECREF(entry);
    Py_XDECREF(closed);
    Py_DECREF(key);
    Py_DECREF(offer);
    return result;
}

/* Engine._answer(offer, event, now, out, refused=..., text=texts.<name>): 0 or -1 */
static int
answer(PyObject *engine, PyObject *offer, PyObject *event, PyObject *now, PyObject *out, PyObject *refused,
       PyObject *texts, PyObject *name)
{
    PyObject *text = PyObject_GetAttr(texts, name);
    if (text == NULL) {
        return -1;
    }
    PyObject *kwnames = PyTuple_Pack(2, s_refused, s_text_kw);
    if (kwnames == NULL) {
        Py_DECREF(text);
        return -1;
    }
    PyObject *call[7] = {engine, offer, event, now, out, refused, text};
    PyObject *done = PyObject_VectorcallMethod(s_answer, call, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
    Py_DECREF(kwnames);
    Py_DECREF(text);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* an ACTIVATION or FULFILLED record: {"package_id", "payment": payment.<value_name>, "price": str(price)} */
static int
append_sale(PyObject *out, PyObject *kind, PyObject *now, PyObject *msisdn, PyObject *campaign_id, PyObject *variant,
            PyObject *key, PyObject *package_id, PyObject *payment, PyObject *value_name, PyObject *price)
{
    PyObject *payment_value = PyObject_GetAttr(payment, value_name);
    PyObject *price_text = payment_value == NULL ? NULL : PyObject_Str(price);
    if (price_text == NULL) {
        Py_XDECREF(payment_value);
        return -1;
    }
    PyObject *pairs[6] = {s_package_id, package_id, s_payment, payment_value, s_price, price_text};
    int failed = append_record(out, kind, now, msisdn, campaign_id, variant, key, 3, pairs);
    Py_DECREF(payment_value);
    Py_DECREF(price_text);
    return failed;
}

/* Engine._response: 1 done, 0 not native (the engine's method, before anything changed), -1 error */
static int
response(PyObject *engine, PyObject *event, PyObject *now, PyObject *out)
{
    PyObject *msisdn = SLOT(event, rs_msisdn), *response_id = SLOT(event, rs_response_id);
    PyObject *channel = SLOT(event, rs_channel), *offer_id = SLOT(event, rs_offer_id);
    PyObject *option_id = SLOT(event, rs_option_id);
    if (msisdn == NULL || response_id == NULL || channel == NULL || offer_id == NULL || option_id == NULL ||
        !PyUnicode_CheckExact(msisdn) || !PyUnicode_CheckExact(response_id) ||
        (offer_id != Py_None && !PyUnicode_CheckExact(offer_id)) ||
        (option_id != Py_None && !PyUnicode_CheckExact(option_id))) {
        return 0;
    }
    PyObject *subscribers = engine_attr(engine, s_subscribers);
    PyObject *offers = subscribers == NULL ? NULL : engine_attr(engine, s_offers);
    PyObject *subscriber = NULL, *offer = NULL, *fields = NULL, *text = NULL, *latency = NULL,
             *command = NULL;
    int result = -1;
    if (offers == NULL) {
        goto done;
    }
    if (!PyDict_CheckExact(subscribers) || !PyDict_CheckExact(offers)) {
        result = 0;
        goto done;
    }
    subscriber = Py_XNewRef(PyDict_GetItemWithError(subscribers, msisdn));
    if (subscriber == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        subscriber = PyObject_CallNoArgs(subscriber_class);
        if (subscriber == NULL || !Py_IS_TYPE(subscriber, subscriber_type)) {
            if (subscriber != NULL) {
                PyErr_SetString(PyExc_TypeError, "_Subscriber() made an object of another class");
            }
            goto done;
        }
        if (PyDict_SetItem(subscribers, msisdn, subscriber) < 0) {
            goto done;
        }
    } else if (!Py_IS_TYPE(subscriber, subscriber_type) || SLOT(subscriber, sub_responses) == NULL ||
               !PyTuple_CheckExact(SLOT(subscriber, sub_responses)) || SLOT(subscriber, sub_offers) == NULL ||
               !PyTuple_CheckExact(SLOT(subscriber, sub_offers))) {
        result = 0;
        goto done;
    }
    PyObject *seen = SLOT(subscriber, sub_responses);
    int known = PySequence_Contains(seen, response_id);
    if (known != 0) {
        result = known < 0 ? -1 : 1; /* the same answer delivered again: already handled */
        goto done;
    }
    {
        Py_ssize_t size = PyTuple_GET_SIZE(seen);
        PyObject *kept =
            tuple_plus(seen, size > recent_responses - 1 ? size - (recent_responses - 1) : 0, response_id);
        if (kept == NULL) {
            goto done;
        }
        untrack_atomic(kept);
        set_slot(subscriber, sub_responses, kept);
        Py_DECREF(kept);
    }
    /* from here on, every way out is the engine's path's */
    result = 1;
    if (offer_id == Py_None) { /* Engine._offer_with: the newest open offer naming the option */
        if (option_id != Py_None) {
            PyObject *open = SLOT(subscriber, sub_offers);
            for (Py_ssize_t i = PyTuple_GET_SIZE(open) - 1; i >= 0 && offer == NULL; i--) {
                PyObject *candidate = PyDict_GetItemWithError(offers, PyTuple_GET_ITEM(open, i));
                if (candidate == NULL) {
                    if (PyErr_Occurred()) {
                        result = -1;
                        goto done;
                    }
                    continue;
                }
                PyObject *expires = SLOT(candidate, offer_offsets[O_EXPIRES_AT]);
                PyObject *offered = SLOT(candidate, offer_offsets[O_OFFERED]);
                if (!Py_IS_TYPE(candidate, offer_type) || expires == NULL || offered == NULL ||
                    !Py_IS_TYPE(offered, option_set_type) || SLOT(offered, os_by_name) == NULL) {
                    PyErr_SetString(PyExc_TypeError, "Engine._offers must hold _Offer objects");
                    result = -1;
                    goto done;
                }
                if (expires == Py_None) {
                    continue;
                }
                int named = PySequence_Contains(SLOT(offered, os_by_name), option_id);
                if (named < 0) {
                    result = -1;
                    goto done;
                }
                if (named) {
                    offer = Py_NewRef(candidate);
                }
            }
        }
    } else {
        offer = Py_XNewRef(PyDict_GetItemWithError(offers, offer_id));
        if (offer == NULL && PyErr_Occurred()) {
            result = -1;
            goto done;
        }
    }
    int mine = 0;
    if (offer != NULL) {
        if (!Py_IS_TYPE(offer, offer_type) || SLOT(offer, offer_offsets[O_MSISDN]) == NULL) {
            PyErr_SetString(PyExc_TypeError, "Engine._offers must hold _Offer objects");
            result = -1;
            goto done;
        }
        mine = PyObject_RichCompareBool(SLOT(offer, offer_offsets[O_MSISDN]), msisdn, Py_EQ);
        if (mine < 0) {
            result = -1;
            goto done;
        }
    }
    PyObject *campaign = mine ? SLOT(offer, offer_offsets[O_CAMPAIGN]) : NULL;
    PyObject *texts = campaign != NULL && Py_IS_TYPE(campaign, campaign_type) ? SLOT(campaign, camp_texts) : NULL;
    if (mine && texts == NULL) {
        PyErr_SetString(PyExc_TypeError, "_Offer.campaign must be a _Campaign");
        result = -1;
        goto done;
    }
    if (!mine || texts == Py_None) { /* no open offer of this subscriber, or one that offers nothing */
        PyObject *args[4] = {event, subscriber, now, out};
        result = call_engine(engine, s_reject_response, 4, args) < 0 ? -1 : 1;
        goto done;
    }
    PyObject *state = SLOT(offer, off_state), *expires_at = SLOT(offer, offer_offsets[O_EXPIRES_AT]);
    if (state == NULL || expires_at == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_Offer without state or expires_at");
        result = -1;
        goto done;
    }
    if (state == state_activating) {
        result = answer(engine, offer, event, now, out, s_duplicate_word, texts, s_duplicate_attr) < 0 ? -1 : 1;
        goto done;
    }
    if ((state != state_awaiting && state != state_open) || expires_at == Py_None) {
        result = answer(engine, offer, event, now, out, s_not_offered_yet, texts, s_not_offered_attr) < 0 ? -1 : 1;
        goto done;
    }
    int over = compare_numbers(now, expires_at, Py_GE);
    if (over != 0) {
        if (over < 0 || close_offer(engine, offer, s_expired, now, out) < 0 ||
            answer(engine, offer, event, now, out, s_expired, texts, s_expired_attr) < 0) {
            result = -1;
        }
        goto done;
    }
    if (channel == stk_declined) {
        if (answer(engine, offer, event, now, out, Py_None, texts, s_declined_attr) < 0 ||
            close_offer(engine, offer, s_declined_word, now, out) < 0) {
            result = -1;
        }
        goto done;
    }
    PyObject *option = NULL; /* borrowed */
    if (channel == stk_ok && option_id == Py_None) {
        PyObject *pushed = SLOT(offer, offer_offsets[O_PUSHED]);
        PyObject *options = pushed != NULL && Py_IS_TYPE(pushed, option_set_type) ? SLOT(pushed, os_options) : NULL;
        if (options == NULL || !PyTuple_CheckExact(options)) {
            PyErr_SetString(PyExc_TypeError, "_Offer.pushed must be an _OptionSet");
            result = -1;
            goto done;
        }
        option = PyTuple_GET_SIZE(options) == 1 ? PyTuple_GET_ITEM(options, 0) : NULL;
    } else if (option_id != Py_None) {
        PyObject *offered = SLOT(offer, offer_offsets[O_OFFERED]);
        PyObject *by_name = offered != NULL && Py_IS_TYPE(offered, option_set_type) ? SLOT(offered, os_by_name) : NULL;
        if (by_name == NULL || !PyDict_CheckExact(by_name)) {
            PyErr_SetString(PyExc_TypeError, "_Offer.offered must be an _OptionSet");
            result = -1;
            goto done;
        }
        option = PyDict_GetItemWithError(by_name, option_id);
        if (option == NULL && PyErr_Occurred()) {
            result = -1;
            goto done;
        }
    }
    if (option == NULL) {
        result = answer(engine, offer, event, now, out, s_not_offered, texts, s_not_offered_attr) < 0 ? -1 : 1;
        goto done;
    }
    Py_INCREF(option);
    result = -1;
    fields = fields_of(engine, option);
    PyObject *package_id = Py_IS_TYPE(option, option_type) ? SLOT(option, opt_package_id) : NULL;
    PyObject *payment = Py_IS_TYPE(option, option_type) ? SLOT(option, opt_payment) : NULL;
    PyObject *price = Py_IS_TYPE(option, option_type) ? SLOT(option, opt_price) : NULL;
    if (fields == NULL || package_id == NULL || payment == NULL || price == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "an offered option must be an OfferOption");
        }
        Py_DECREF(option);
        goto done;
    }
    set_slot(offer, off_state, state_activating);
    set_slot(offer, off_deadline, Py_None);
    set_slot(offer, offer_offsets[O_CHOSEN], option);
    Py_DECREF(option); /* the offer holds it */
    PyObject *key = SLOT(offer, offer_offsets[O_OFFER_ID]), *variant = SLOT(offer, offer_offsets[O_VARIANT]);
    PyObject *trigger = SLOT(offer, offer_offsets[O_TRIGGER]), *campaign_id = SLOT(campaign, camp_id);
    PyObject *event_time = trigger == NULL ? NULL : PyObject_GetAttr(trigger, s_event_time);
    if (key == NULL || variant == NULL || campaign_id == NULL || event_time == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_AttributeError, "_Offer or _Campaign with a field never set");
        }
        goto done;
    }
    PyObject *channel_value = PyObject_GetAttr(channel, s_value_); /* read before the latency, as there */
    latency = channel_value == NULL ? NULL : PyNumber_Subtract(now, event_time);
    Py_DECREF(event_time);
    if (latency == NULL) {
        Py_XDECREF(channel_value);
        goto done;
    }
    {
        PyObject *pairs[10] = {s_response_id, response_id, s_channel, channel_value, s_option,
                               option_id,     s_package_id, package_id, s_latency, latency};
        int failed = append_record(out, kind_response, now, msisdn, campaign_id, variant, key, 5, pairs);
        Py_DECREF(channel_value);
        if (failed < 0) {
            goto done;
        }
    }
    if (append_sale(out, kind_activation, now, msisdn, campaign_id, variant, key, package_id, payment, s_value_, price) <
        0) {
        goto done;
    }
    {
        PyObject *args[5] = {key, msisdn, package_id, payment, price};
        command = PyObject_Vectorcall(activate_builder, args, 5, NULL);
        if (command != NULL) {
            untrack_command(out, command);
        }
        if (command == NULL || PyList_Append(out, command) < 0) {
            goto done;
        }
        Py_CLEAR(command);
    }
    text = render(texts, s_accepted_attr, fields);
    if (text == NULL) {
        goto done;
    }
    {
        PyObject *args[5] = {response_id, msisdn, channel, Py_True, text};
        command = PyObject_Vectorcall(reply_builder, args, 5, NULL);
        if (command != NULL) {
            untrack_command(out, command);
        }
        if (command == NULL || PyList_Append(out, command) < 0) {
            goto done;
        }
    }
    result = 1;
done:
    Py_XDECREF(subscribers);
    Py_XDECREF(offers);
    Py_XDECREF(subscriber);
    Py_XDECREF(offer);
    Py_XDECREF(fields);
    Py_XDECREF(text);
    Py_XDECREF(latency);
    Py_XDECREF(command);
    return result;
}

/* Engine._activation of an Activated: 1 done, 0 not native (the engine's method), -1 error */
static int
activation(PyObject *engine, PyObject *event, PyObject *now, PyObject *out)
{
    PyObject *offer_id = SLOT(event, ac_offer_id), *package_id = SLOT(event, ac_package_id);
    PyObject *payment = SLOT(event, ac_payment), *price = SLOT(event, ac_price);
    if (offer_id == NULL || package_id == NULL || payment == NULL || price == NULL || !PyUnicode_CheckExact(offer_id)) {
        return 0;
    }
    PyObject *offers = engine_attr(engine, s_offers);
    if (offers == NULL) {
        return -1;
    }
    PyObject *offer = NULL, *fields = NULL, *profile = NULL, *zone = NULL, *text = NULL, *values = NULL,
             *command_id = NULL, *policy = NULL;
    int result = -1;
    if (!PyDict_CheckExact(offers)) {
        result = 0;
        goto done;
    }
    offer = Py_XNewRef(PyDict_GetItemWithError(offers, offer_id));
    if (offer == NULL) {
        result = PyErr_Occurred() ? -1 : 1; /* billing repeated itself (idempotent): already recorded */
        goto done;
    }
    if (!Py_IS_TYPE(offer, offer_type)) {
        result = 0;
        goto done;
    }
    if (SLOT(offer, off_state) != state_activating) {
        result = 1;
        goto done;
    }
    PyObject *campaign = SLOT(offer, offer_offsets[O_CAMPAIGN]), *option = SLOT(offer, offer_offsets[O_CHOSEN]);
    PyObject *subscriber = SLOT(offer, offer_offsets[O_SUBSCRIBER]);
    PyObject *msisdn = SLOT(offer, offer_offsets[O_MSISDN]), *key = SLOT(offer, offer_offsets[O_OFFER_ID]);
    PyObject *variant = SLOT(offer, offer_offsets[O_VARIANT]);
    if (campaign == NULL || option == NULL || subscriber == NULL || msisdn == NULL || key == NULL || variant == NULL ||
        !Py_IS_TYPE(campaign, campaign_type) || SLOT(campaign, camp_texts) == NULL ||
        SLOT(campaign, camp_texts) == Py_None || option == Py_None || !Py_IS_TYPE(subscriber, subscriber_type) ||
        SLOT(campaign, camp_id) == NULL) {
        result = 0; /* the engine's path asserts what it expects */
        goto done;
    }
    PyObject *texts = SLOT(campaign, camp_texts), *campaign_id = SLOT(campaign, camp_id);
    fields = fields_of(engine, option);
    if (fields == NULL || profile_and_zone(engine, subscriber, &profile, &zone) < 0) {
        goto done;
    }
    if (append_sale(out, kind_fulfilled, now, msisdn, campaign_id, variant, key, package_id, payment, s_value, price) <
        0) {
        goto done;
    }
    /* {**fields, "payment": event.payment.value, "price": f"{event.price:.2f}"} */
    values = PyDict_New();
    if (values == NULL || PyDict_Update(values, fields) < 0) {
        goto done;
    }
    {
        PyObject *value = PyObject_GetAttr(payment, s_value);
        int failed = value == NULL || PyDict_SetItem(values, s_payment, value) < 0;
        Py_XDECREF(value);
        PyObject *formatted = failed ? NULL : PyObject_Format(price, s_two_places);
        failed = formatted == NULL || PyDict_SetItem(values, s_price, formatted) < 0;
        Py_XDECREF(formatted);
        if (failed) {
            goto done;
        }
    }
    text = render(texts, s_confirmation_attr, values);
    if (text == NULL) {
        goto done;
    }
    policy = engine_attr(engine, s_policy);
    if (policy == NULL) {
        goto done;
    }
    {
        PyObject *args[6] = {policy, msisdn, channel_sms, transactional, now, zone};
        PyObject *done_record =
            PyObject_VectorcallMethod(s_record_method, args, 6 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (done_record == NULL) {
            goto done;
        }
        Py_DECREF(done_record);
    }
    command_id = PyUnicode_Concat(key, s_confirm_suffix);
    if (command_id == NULL) {
        goto done;
    }
    {
        PyObject *args[6] = {command_id, msisdn, campaign_id, text, key, Py_False};
        PyObject *command = PyObject_Vectorcall(send_sms_builder, args, 6, NULL);
        if (command != NULL) {
            untrack_command(out, command);
        }
        int failed = command == NULL || PyList_Append(out, command) < 0;
        Py_XDECREF(command);
        if (failed) {
            goto done;
        }
    }
    result = close_offer(engine, offer, s_activated_word, now, out) < 0 ? -1 : 1;
done:
    Py_DECREF(offers);
    Py_XDECREF(offer);
    Py_XDECREF(fields);
    Py_XDECREF(profile);
    Py_XDECREF(zone);
    Py_XDECREF(text);
    Py_XDECREF(values);
    Py_XDECREF(command_id);
    Py_XDECREF(policy);
    return result;
}

/* --- profiles (Engine._on_profile) ------------------------------------------------------------- */

/* whether obj is a str, int, float, bool or None (no references to anything) */
static inline int
atomic(PyObject *obj)
{
    return obj == Py_None || PyUnicode_CheckExact(obj) || PyLong_CheckExact(obj) || PyBool_Check(obj) ||
           PyFloat_CheckExact(obj);
}

/* whether every slot of obj (an instance of a slotted class without __dict__) holds an atomic value,
 * but the slots at offsets `skip` and `skip_too` (-1: none) and a value of exact class `also` (NULL: none) */
static int
atomic_slots_but(PyObject *obj, Py_ssize_t skip, Py_ssize_t skip_too, PyTypeObject *also)
{
    PyTypeObject *type = Py_TYPE(obj);
    PyMemberDef *members = type->tp_members;
    if (type->tp_dictoffset != 0 || type->tp_base != &PyBaseObject_Type || members == NULL) {
        return 0;
    }
    for (Py_ssize_t i = 0; members[i].name != NULL; i++) {
        Py_ssize_t offset = members[i].offset;
        if (members[i].type != T_OBJECT_EX) {
            return 0;
        }
        PyObject *value = SLOT(obj, offset);
        if (offset != skip && offset != skip_too && value != NULL && !atomic(value) &&
            (also == NULL || !Py_IS_TYPE(value, also))) {
            return 0;
        }
    }
    return 1;
}

/* whether v is a value a new command may hold without any path back to it: one that refers to nothing
 * the collector follows (str, int, float, bool, None, Decimal: not GC objects), a member of an enum
 * whose members live as long as their class (RecordKind, Payment, ResponseChannel), or an exact
 * tuple, list or dict of such values (a detail mapping and its lists of ids; one level deep, as the
 * paths build them) */
static int
leaf_value(PyObject *v, int depth)
{
    if (!PyObject_IS_GC(v) || Py_IS_TYPE(v, record_kind_type) || Py_IS_TYPE(v, payment_type) ||
        Py_IS_TYPE(v, response_channel_type)) {
        return 1;
    }
    if (depth > 1) {
        return 0;
    }
    if (PyTuple_CheckExact(v) || PyList_CheckExact(v)) {
        Py_ssize_t size = PySequence_Fast_GET_SIZE(v);
        PyObject **items = PySequence_Fast_ITEMS(v);
        for (Py_ssize_t i = 0; i < size; i++) {
            if (!leaf_value(items[i], depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    if (PyDict_CheckExact(v)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(v, &pos, &key, &value)) {
            if (!PyUnicode_CheckExact(key) || !leaf_value(value, depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

static void
untrack_container(PyObject *v)
{
    if (PyObject_IS_GC(v) && PyObject_GC_IsTracked(v) &&
        (PyTuple_CheckExact(v) || PyList_CheckExact(v) || PyDict_CheckExact(v))) {
        if (PyDict_CheckExact(v)) {
            Py_ssize_t pos = 0;
            PyObject *key, *value;
            while (PyDict_Next(v, &pos, &key, &value)) {
                untrack_container(value);
            }
        } else {
            Py_ssize_t size = PySequence_Fast_GET_SIZE(v);
            for (Py_ssize_t i = 0; i < size; i++) {
                untrack_container(PySequence_Fast_ITEMS(v)[i]);
            }
        }
        PyObject_GC_UnTrack(v);
    }
}

/* the commands already in a handler's list from which the next are untracked (untrack_command) */
#define HELD_LONG 64

/* Untrack a command the C paths just built into a list already holding HELD_LONG (a Tick's), a
 * Record, SendSms, PushStk, QueryCredit, Activate or Reply (frozen slotted dataclasses) whose every
 * field is a leaf_value, and the detail mapping and lists in it. Nothing it refers to can refer back
 * to an object made after it, and the command is handed out as it is (its detail is read, not
 * changed: the decision trail), so it cannot be on a cycle: the collector need not walk it. A Tick that sends 300k SMS holds 1.2M such objects until it returns, and
 * every young collection during it walked them all (0.75 s of the Tick at 1M subscribers). This is the
 * rule CPython applies to a tuple of atomic values; a consumer that stored a command inside its own
 * detail would make a cycle the collector cannot see, as it would with such a tuple. */
static void
untrack_command(PyObject *out, PyObject *command)
{
    /* Untracking costs a little per command; it pays only for commands alive at a collection, i.e.
     * held in a long list: the handful one event makes are freed long before the next one. */
    if (!PyList_Check(out) || PyList_GET_SIZE(out) < HELD_LONG || !PyObject_GC_IsTracked(command)) {
        return;
    }
    PyTypeObject *type = Py_TYPE(command);
    PyMemberDef *members = type->tp_members;
    if (type->tp_dictoffset != 0 || type->tp_base != &PyBaseObject_Type || members == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; members[i].name != NULL; i++) {
        if (members[i].type != T_OBJECT_EX) {
            return;
        }
        PyObject *value = SLOT(command, members[i].offset);
        if (value != NULL && !leaf_value(value, 0)) {
            return;
        }
    }
    for (Py_ssize_t i = 0; members[i].name != NULL; i++) {
        PyObject *value = SLOT(command, members[i].offset);
        if (value != NULL) {
            untrack_container(value);
        }
    }
    PyObject_GC_UnTrack(command);
}

/* Untrack a Profile that cannot be on a reference cycle: atomic fields, packages of ActivePackages with
 * atomic fields, the shared empty attributes (immutable and empty). The engine keeps one per
 * subscriber (a million, with their packages) for as long as it runs: the collector's full passes need
 * not walk them. Anything else stays tracked. */
static void
untrack_profile(PyObject *profile)
{
    if (!PyObject_GC_IsTracked(profile) || !Py_IS_TYPE(profile, profile_type)) {
        return;
    }
    PyObject *packages = SLOT(profile, prof_packages), *attributes = SLOT(profile, prof_attributes);
    if (packages == NULL || attributes == NULL || !PyTuple_CheckExact(packages)) {
        return;
    }
    if (attributes != no_attributes) {
        return; /* a mapping of its own may be changed later to refer to anything */
    }
    if (!atomic_slots_but(profile, prof_packages, prof_attributes, NULL)) {
        return; /* every other slot atomic */
    }
    Py_ssize_t count = PyTuple_GET_SIZE(packages);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *package = PyTuple_GET_ITEM(packages, i);
        if (!Py_IS_TYPE(package, package_type) || !atomic_slots_but(package, -1, -1, NULL)) {
            return;
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        untrack_owned(PyTuple_GET_ITEM(packages, i));
    }
    untrack_owned(packages); /* (immutable, and each item holds atomic values only) */
    untrack_owned(profile);
}

/* Untrack a TriggerRaised that cannot be on a reference cycle: atomic fields, a TriggerKind member (its
 * class holds it for as long as the process runs, so no garbage cycle passes through it) and the shared
 * empty attributes. Its fields are frozen. Each open offer keeps its trigger (600k at 1M subscribers in
 * the engine benchmark): tracked, they were a quarter of the heap the collector walks, and the growth
 * that made the steward's full pass come due in the middle of the triggers. Anything else stays
 * tracked. */
static void
untrack_trigger(PyObject *event)
{
    if (!Py_IS_TYPE(event, trigger_type) || !PyObject_GC_IsTracked(event) ||
        SLOT(event, tr_attributes) != no_attributes) {
        return;
    }
    if (atomic_slots_but(event, tr_attributes, -1, trigger_kind_type)) {
        PyObject_GC_UnTrack(event);
    }
}

/* The open offers of `subscriber` tracked again if its profile is tracked (may refer to anything:
 * new_offer untracks an offer only while it is not). 0, or -1 with an exception set. */
static int
track_offers_of(PyObject *engine, PyObject *subscriber)
{
    PyObject *profile = SLOT(subscriber, sub_profile), *open = SLOT(subscriber, sub_offers);
    if (profile == NULL || !PyObject_GC_IsTracked(profile) || open == NULL || !PyTuple_Check(open) ||
        PyTuple_GET_SIZE(open) == 0) {
        return 0;
    }
    PyObject *offers = engine_attr(engine, s_offers);
    if (offers == NULL) {
        return -1;
    }
    int result = 0;
    if (PyDict_CheckExact(offers)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(open); i++) {
            PyObject *offer = PyDict_GetItemWithError(offers, PyTuple_GET_ITEM(open, i));
            if (offer == NULL) {
                if (PyErr_Occurred()) {
                    result = -1;
                    break;
                }
                continue;
            }
            if (PyObject_IS_GC(offer) && !PyObject_GC_IsTracked(offer)) {
                PyObject_GC_Track(offer);
            }
        }
    }
    Py_DECREF(offers);
    return result;
}

static PyObject *
track_open_offers(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !Py_IS_TYPE(args[1], subscriber_type)) {
        PyErr_SetString(PyExc_TypeError, "track_open_offers(engine, subscriber): an engine and a _Subscriber");
        return NULL;
    }
    if (track_offers_of(args[0], args[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Engine._on_profile: 1 done, 0 not native (the engine's method), -1 error */
static int
profile_updated(PyObject *engine, PyObject *event, PyObject *now, PyObject *out)
{
    PyObject *profile = SLOT(event, pu_profile);
    if (profile == NULL || !Py_IS_TYPE(profile, profile_type) || SLOT(profile, prof_msisdn) == NULL) {
        return 0;
    }
    PyObject *msisdn = SLOT(profile, prof_msisdn);
    PyObject *subscribers = engine_attr(engine, s_subscribers);
    if (subscribers == NULL) {
        return -1;
    }
    int result = -1;
    if (!PyDict_CheckExact(subscribers)) {
        result = 0;
        goto done;
    }
    PyObject *subscriber = PyDict_GetItemWithError(subscribers, msisdn);
    if (subscriber == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        subscriber = PyObject_CallNoArgs(subscriber_class);
        if (subscriber == NULL) {
            goto done;
        }
        if (!Py_IS_TYPE(subscriber, subscriber_type)) {
            Py_DECREF(subscriber);
            PyErr_SetString(PyExc_TypeError, "_Subscriber() made an object of another class");
            goto done;
        }
        int failed = PyDict_SetItem(subscribers, msisdn, subscriber);
        Py_DECREF(subscriber); /* the dict holds it */
        if (failed < 0) {
            goto done;
        }
    } else if (!Py_IS_TYPE(subscriber, subscriber_type)) {
        result = 0;
        goto done;
    }
    untrack_profile(profile);
    set_slot(subscriber, sub_profile, profile);
    result = track_offers_of(engine, subscriber) < 0 ? -1 : 1;
done:
    Py_DECREF(subscribers);
    return result;
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *engine;
} TriggerPath;



static PyObject *
python_trigger(PyObject *engine, PyObject *event, PyObject *now, PyObject *out)
{
    PyObject *call[4] = {engine, event, now, out};
    return PyObject_VectorcallMethod(s_trigger, call, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static PyObject *
trigger_path_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TriggerPath *self = (TriggerPath *)callable;
    if (PyVectorcall_NARGS(nargsf) != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "TriggerPath takes (event, now, out)");
        return NULL;
    }
    PyObject *event = args[0], *now = args[1], *out = args[2];
    if (!PyList_CheckExact(out) || !Py_IS_TYPE(event, trigger_type)) {
        return python_trigger(self->engine, event, now, out);
    }
    PyObject *by_trigger = engine_attr(self->engine, s_by_trigger);
    if (by_trigger == NULL) {
        return NULL;
    }
    if (!PyDict_CheckExact(by_trigger)) {
        Py_DECREF(by_trigger);
        return python_trigger(self->engine, event, now, out);
    }
    PyObject *kind = SLOT(event, tr_kind);
    PyObject *found = kind == NULL ? NULL : PyDict_GetItemWithError(by_trigger, kind);
    if (found == NULL) {
        Py_DECREF(by_trigger);
        if (PyErr_Occurred() || kind == NULL) {
            return kind == NULL ? python_trigger(self->engine, event, now, out) : NULL;
        }
        Py_RETURN_NONE; /* no campaign starts on this trigger: nothing to decide, nothing to record */
    }
    int done = 0;
    if (PyTuple_CheckExact(found) && PyTuple_GET_SIZE(found) == 2 && PyTuple_GET_ITEM(found, 1) == Py_False &&
        PyTuple_CheckExact(PyTuple_GET_ITEM(found, 0))) {
        PyObject *campaigns = Py_NewRef(PyTuple_GET_ITEM(found, 0));
        done = trigger_campaigns(self->engine, campaigns, event, now, out);
        Py_DECREF(campaigns);
    }
    Py_DECREF(by_trigger);
    if (done < 0) {
        return NULL;
    }
    if (done == 0) { /* selective campaigns, or objects of other classes: the engine's own path */
        return python_trigger(self->engine, event, now, out);
    }
    Py_RETURN_NONE;
}

/* Engine._on_tick: the deadlines that have come, then the policy's prune when it is due */
static PyObject *
tick_path_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TriggerPath *self = (TriggerPath *)callable;
    if (PyVectorcall_NARGS(nargsf) != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "TickPath takes (event, now, out)");
        return NULL;
    }
    PyObject *now = args[1], *out = args[2];
    if (!PyList_CheckExact(out)) { /* the engine's own path appends to what it is given */
        PyObject *call[4] = {self->engine, args[0], now, out};
        return PyObject_VectorcallMethod(s_on_tick, call, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    PyObject *call[1] = {now};
    if (tick(self->engine, now, out) < 0 || call_engine(self->engine, s_maybe_prune, 1, call) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* a handler of one event type: the C function when the event is of that very class and the
 * engine's objects are, else the engine's Python method */
static PyObject *
event_path(PyObject *engine, PyObject *const *args, size_t nargsf, PyObject *kwnames, PyTypeObject *event_type,
           int (*native_handler)(PyObject *, PyObject *, PyObject *, PyObject *), PyObject *method)
{
    if (PyVectorcall_NARGS(nargsf) != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "an engine path takes (event, now, out)");
        return NULL;
    }
    PyObject *event = args[0], *now = args[1], *out = args[2];
    int done = 0;
    if (PyList_CheckExact(out) && Py_IS_TYPE(event, event_type)) {
        done = native_handler(engine, event, now, out);
    }
    if (done < 0) {
        return NULL;
    }
    if (done == 0) {
        PyObject *call[4] = {engine, event, now, out};
        return PyObject_VectorcallMethod(method, call, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
credit_path_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return event_path(((TriggerPath *)callable)->engine, args, nargsf, kwnames, credit_type, credit_scored,
                      s_credit_scored);
}

static PyObject *
response_path_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return event_path(((TriggerPath *)callable)->engine, args, nargsf, kwnames, responded_type, response,
                      s_response_method);
}

static PyObject *
activation_path_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return event_path(((TriggerPath *)callable)->engine, args, nargsf, kwnames, activated_type, activation,
                      s_activation_method);
}

static PyObject *
profile_path_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return event_path(((TriggerPath *)callable)->engine, args, nargsf, kwnames, profile_updated_type,
                      profile_updated, s_on_profile);
}

static PyObject *
delivery_path_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return event_path(((TriggerPath *)callable)->engine, args, nargsf, kwnames, delivery_type, delivered,
                      s_delivered_method);
}

/* Engine.handle(event, now): the handler of the event's class from engine._handlers, else the engine's
 * _handler_of (a subclass of an event type); a new list of the commands */
static PyObject *
dispatch_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *engine = ((TriggerPath *)callable)->engine;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        /* keywords, or a wrong count: the class's own handle, which takes them or says what is wrong */
        PyObject *method = PyObject_GetAttr((PyObject *)Py_TYPE(engine), s_handle);
        if (method == NULL) {
            return NULL;
        }
        Py_ssize_t total = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
        PyObject **call = PyMem_New(PyObject *, total + 1);
        if (call == NULL) {
            Py_DECREF(method);
            return PyErr_NoMemory();
        }
        call[0] = engine;
        for (Py_ssize_t i = 0; i < total; i++) {
            call[i + 1] = args[i];
        }
        PyObject *result = PyObject_Vectorcall(method, call, (size_t)(nargs + 1), kwnames);
        PyMem_Free(call);
        Py_DECREF(method);
        return result;
    }
    PyObject *event = args[0], *now = args[1];
    PyObject *handlers = engine_attr(engine, s_handlers);
    if (handlers == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(handlers);
        return NULL;
    }
    PyObject *handler = PyDict_CheckExact(handlers) ? Py_XNewRef(PyDict_GetItemWithError(handlers, (PyObject *)Py_TYPE(event)))
                                                    : PyObject_GetItem(handlers, (PyObject *)Py_TYPE(event));
    Py_DECREF(handlers);
    if (handler == NULL) {
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_KeyError)) {
            Py_DECREF(out);
            return NULL;
        }
        PyErr_Clear();
        PyObject *call[2] = {engine, event};
        handler = PyObject_VectorcallMethod(s_handler_of, call, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (handler == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        if (handler == Py_None) {
            Py_DECREF(handler);
            return out;
        }
    }
    PyObject *call[3] = {event, now, out};
    PyObject *done = PyObject_Vectorcall(handler, call, 3, NULL);
    Py_DECREF(handler);
    if (done == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    Py_DECREF(done);
    return out;
}

static vectorcallfunc call_of(PyTypeObject *type);

static PyObject *
trigger_path_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *engine;
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "campaign_core._journey.configure() was not called");
        return NULL;
    }
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "TriggerPath takes the engine only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:TriggerPath", &engine)) {
        return NULL;
    }
    vectorcallfunc call = call_of(type);
    if (call == NULL) {
        PyErr_Format(PyExc_TypeError, "%s is not an engine path", type->tp_name);
        return NULL;
    }
    TriggerPath *self = (TriggerPath *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = call;
    self->engine = Py_NewRef(engine);
    return (PyObject *)self;
}

static int
trigger_path_traverse(TriggerPath *self, visitproc visit, void *arg)
{
    Py_VISIT(self->engine);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
trigger_path_clear(TriggerPath *self)
{
    Py_CLEAR(self->engine);
    return 0;
}

static void
trigger_path_dealloc(TriggerPath *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    trigger_path_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyMemberDef trigger_path_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(TriggerPath, vectorcall), READONLY, NULL},
    {NULL},
};

#define PATH_SPEC(var, name, doc)                                                                     \
    static PyType_Slot var##_slots[] = {                                                             \
        {Py_tp_new, trigger_path_new},                                                               \
        {Py_tp_dealloc, trigger_path_dealloc},                                                       \
        {Py_tp_traverse, trigger_path_traverse},                                                     \
        {Py_tp_clear, trigger_path_clear},                                                           \
        {Py_tp_call, PyVectorcall_Call},                                                             \
        {Py_tp_members, trigger_path_members},                                                       \
        {Py_tp_doc, doc},                                                                            \
        {0, NULL},                                                                                   \
    };                                                                                               \
    static PyType_Spec var = {                                                                       \
        name,                                                                                        \
        sizeof(TriggerPath),                                                                         \
        0,                                                                                           \
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_IMMUTABLETYPE, \
        var##_slots,                                                                                 \
    }

PATH_SPEC(trigger_path_spec, "campaign_core._journey.TriggerPath",
          "TriggerPath(engine): Engine._trigger as a callable (event, now, out).");
PATH_SPEC(tick_path_spec, "campaign_core._journey.TickPath",
          "TickPath(engine): Engine._on_tick as a callable (event, now, out).");
PATH_SPEC(credit_path_spec, "campaign_core._journey.CreditPath",
          "CreditPath(engine): Engine._credit_scored as a callable (event, now, out).");
PATH_SPEC(dispatch_spec, "campaign_core._journey.Dispatch",
          "Dispatch(engine): Engine.handle as a callable (event, now) -> commands.");
PATH_SPEC(profile_path_spec, "campaign_core._journey.ProfilePath",
          "ProfilePath(engine): Engine._on_profile as a callable (event, now, out).");
PATH_SPEC(response_path_spec, "campaign_core._journey.ResponsePath",
          "ResponsePath(engine): Engine._response as a callable (event, now, out).");
PATH_SPEC(activation_path_spec, "campaign_core._journey.ActivationPath",
          "ActivationPath(engine): Engine._activation as a callable (event, now, out).");
PATH_SPEC(delivery_path_spec, "campaign_core._journey.DeliveryPath",
          "DeliveryPath(engine): Engine._delivered as a callable (event, now, out).");

/* --- configure ---------------------------------------------------------------------------------- */

static int
take(PyObject *namespace, const char *name, PyObject **slot)
{
    PyObject *value = PyDict_GetItemString(namespace, name); /* borrowed */
    if (value == NULL) {
        PyErr_Format(PyExc_KeyError, "configure(): the engine module has no %s", name);
        return -1;
    }
    Py_XSETREF(*slot, Py_NewRef(value));
    return 0;
}

static int
take_type(PyObject *namespace, const char *name, PyTypeObject **slot)
{
    PyObject *value = NULL;
    if (take(namespace, name, &value) < 0) {
        return -1;
    }
    if (!PyType_Check(value)) {
        Py_DECREF(value);
        PyErr_Format(PyExc_TypeError, "configure(): %s is not a class", name);
        return -1;
    }
    Py_XSETREF(*slot, (PyTypeObject *)value);
    return 0;
}

#define OFFSET(var, type, name)                         \
    do {                                                \
        if ((var = slot_offset(type, name)) < 0) {      \
            return NULL;                                \
        }                                               \
    } while (0)

static PyObject *
configure(PyObject *module, PyObject *namespace)
{
    if (!PyDict_Check(namespace)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes the engine module's namespace (a dict)");
        return NULL;
    }
    PyObject *recent = NULL, *heapq = NULL, *responses_limit = NULL, *closed_limit = NULL;
    if (take(namespace, "_record", &record_builder) < 0 || take(namespace, "_query_credit", &query_credit_builder) < 0 ||
        take(namespace, "_Subscriber", &subscriber_class) < 0 || take_type(namespace, "_Offer", &offer_type) < 0 ||
        take_type(namespace, "_Subscriber", &subscriber_type) < 0 ||
        take_type(namespace, "_Campaign", &campaign_type) < 0 ||
        take_type(namespace, "TriggerRaised", &trigger_type) < 0 ||
        take_type(namespace, "TriggerKind", &trigger_kind_type) < 0 ||
        take_type(namespace, "RecordKind", &record_kind_type) < 0 || take_type(namespace, "Payment", &payment_type) < 0 ||
        take_type(namespace, "ResponseChannel", &response_channel_type) < 0 ||
        take_type(namespace, "Profile", &profile_type) < 0 || take_type(namespace, "Assigner", &assigner_type) < 0 ||
        take_type(namespace, "_Deadlines", &deadlines_type) < 0 || take(namespace, "_TRIGGER", &kind_trigger) < 0 ||
        take(namespace, "_ASSIGNED", &kind_assigned) < 0 || take(namespace, "_ELIGIBLE", &kind_eligible) < 0 ||
        take(namespace, "_SUPPRESSED", &kind_suppressed) < 0 || take(namespace, "_DEFERRED", &kind_deferred) < 0 ||
        take(namespace, "_SCORING", &state_scoring) < 0 || take(namespace, "_DELAYED", &state_delayed) < 0 ||
        take(namespace, "_UNKNOWN_PROFILE", &unknown_profile) < 0 ||
        take(namespace, "_NO_OPTIONS", &no_options) < 0 ||
        take(namespace, "_ARBITRATION_REASON", &arbitration_format) < 0 ||
        take(namespace, "_RECENT_TRIGGERS", &recent) < 0 || take(namespace, "heapq", &heapq) < 0 ||
        take(namespace, "_push_stk", &push_stk_builder) < 0 || take(namespace, "_send_sms", &send_sms_builder) < 0 ||
        take(namespace, "ALLOWED", &allowed) < 0 || take(namespace, "_AWAITING", &state_awaiting) < 0 ||
        take(namespace, "_CONTACT", &kind_contact) < 0 || take(namespace, "_NO_ATTRIBUTES", &no_attributes) < 0 ||
        take_type(namespace, "_Step", &step_type) < 0 || take_type(namespace, "_OptionSet", &option_set_type) < 0 ||
        take_type(namespace, "ContactPolicy", &policy_type) < 0 || take_type(namespace, "ContactPlan", &plan_type) < 0 ||
        take_type(namespace, "_Calendar", &calendar_type) < 0 || take_type(namespace, "CreditScored", &credit_type) < 0 ||
        take_type(namespace, "DeliveryReported", &delivery_type) < 0 || take(namespace, "_SCORED", &kind_scored) < 0 ||
        take(namespace, "_DELIVERED", &kind_delivered) < 0 || take_type(namespace, "Responded", &responded_type) < 0 ||
        take_type(namespace, "Activated", &activated_type) < 0 || take_type(namespace, "OfferOption", &option_type) < 0 ||
        take(namespace, "_RESPONSE", &kind_response) < 0 || take(namespace, "_ACTIVATION", &kind_activation) < 0 ||
        take(namespace, "_FULFILLED", &kind_fulfilled) < 0 || take(namespace, "_CLOSED", &kind_closed) < 0 ||
        take(namespace, "_ACTIVATING", &state_activating) < 0 || take(namespace, "_OPEN", &state_open) < 0 ||
        take(namespace, "_STK_OK", &stk_ok) < 0 || take(namespace, "_STK_DECLINED", &stk_declined) < 0 ||
        take(namespace, "_activate", &activate_builder) < 0 || take(namespace, "_reply", &reply_builder) < 0 ||
        take(namespace, "_CHANNEL_SMS", &channel_sms) < 0 || take(namespace, "TRANSACTIONAL", &transactional) < 0 ||
        take(namespace, "_RECENT_RESPONSES", &responses_limit) < 0 || take(namespace, "_RECENT_CLOSED", &closed_limit) < 0 ||
        take_type(namespace, "ProfileUpdated", &profile_updated_type) < 0 ||
        take_type(namespace, "ActivePackage", &package_type) < 0) {
        Py_XDECREF(recent);
        Py_XDECREF(heapq);
        return NULL;
    }
    Py_XSETREF(heappush, PyObject_GetAttrString(heapq, "heappush"));
    Py_XSETREF(heappop, PyObject_GetAttrString(heapq, "heappop"));
    Py_DECREF(heapq);
    if (heappop == NULL) {
        Py_XDECREF(recent);
        return NULL;
    }
    recent_triggers = PyLong_AsSsize_t(recent);
    Py_DECREF(recent);
    recent_responses = PyLong_AsSsize_t(responses_limit);
    recent_closed = PyLong_AsSsize_t(closed_limit);
    Py_DECREF(responses_limit);
    Py_DECREF(closed_limit);
    if (recent_responses < 1 || recent_closed < 1) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "_RECENT_RESPONSES and _RECENT_CLOSED must be >= 1");
        }
        return NULL;
    }
    if (heappush == NULL || (recent_triggers == -1 && PyErr_Occurred())) {
        return NULL;
    }
    if (recent_triggers < 1 || !PyUnicode_Check(arbitration_format)) {
        PyErr_SetString(PyExc_ValueError, "_RECENT_TRIGGERS must be >= 1 and _ARBITRATION_REASON a str");
        return NULL;
    }
    if (offer_type->tp_dictoffset != 0 || subscriber_type->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError, "_Offer and _Subscriber must have __slots__ and no __dict__");
        return NULL;
    }
    OFFSET(tr_trigger_id, trigger_type, "trigger_id");
    OFFSET(tr_kind, trigger_type, "kind");
    OFFSET(tr_msisdn, trigger_type, "msisdn");
    OFFSET(tr_event_time, trigger_type, "event_time");
    OFFSET(tr_package_id, trigger_type, "package_id");
    OFFSET(tr_level, trigger_type, "level");
    OFFSET(sub_profile, subscriber_type, "profile");
    OFFSET(sub_triggers, subscriber_type, "triggers");
    OFFSET(sub_offers, subscriber_type, "offers");
    OFFSET(sub_last_start, subscriber_type, "last_start");
    OFFSET(camp_assign, campaign_type, "assign");
    OFFSET(camp_id, campaign_type, "id");
    OFFSET(camp_eligible, campaign_type, "eligible");
    OFFSET(camp_cooldown, campaign_type, "cooldown");
    OFFSET(camp_rank, campaign_type, "rank");
    OFFSET(camp_offer_salt, campaign_type, "offer_salt");
    OFFSET(camp_score_timeout, campaign_type, "score_timeout");
    OFFSET(asg_salt, assigner_type, "salt");
    OFFSET(asg_uppers, assigner_type, "_uppers");
    OFFSET(asg_arm_fields, assigner_type, "arm_fields");
    OFFSET(asg_experiment, assigner_type, "experiment");
    OFFSET(asg_experiment_id, assigner_type, "experiment_id");
    OFFSET(prof_timezone, profile_type, "timezone");
    OFFSET(prof_stk_capable, profile_type, "stk_capable");
    OFFSET(tr_attributes, trigger_type, "attributes");
    OFFSET(camp_steps, campaign_type, "steps");
    OFFSET(camp_expires_after, campaign_type, "expires_after");
    OFFSET(st_index, step_type, "index");
    OFFSET(st_after, step_type, "after");
    OFFSET(st_stk, step_type, "stk");
    OFFSET(st_plan, step_type, "plan");
    OFFSET(st_mode, step_type, "mode");
    OFFSET(st_style, step_type, "style");
    OFFSET(st_suffix, step_type, "suffix");
    OFFSET(st_channel_value, step_type, "channel_value");
    OFFSET(st_promotional, step_type, "promotional");
    OFFSET(st_hard_cap, step_type, "hard_cap");
    OFFSET(os_options, option_set_type, "options");
    OFFSET(os_largest, option_set_type, "largest");
    OFFSET(os_package_ids, option_set_type, "package_ids");
    OFFSET(pol_dnd, policy_type, "_dnd");
    OFFSET(pol_calendars, policy_type, "_calendars");
    OFFSET(pol_state, policy_type, "_state");
    OFFSET(pol_period_counters, policy_type, "_period_counters");
    OFFSET(pol_version, policy_type, "_version");
    OFFSET(plan_promotional, plan_type, "promotional");
    OFFSET(plan_uses_calendar, plan_type, "uses_calendar");
    OFFSET(plan_first_zero, plan_type, "first_zero");
    OFFSET(plan_counts, plan_type, "counts");
    OFFSET(plan_first, plan_type, "first");
    OFFSET(plan_caps, plan_type, "caps");
    OFFSET(cal_lo, calendar_type, "lo");
    OFFSET(cal_hi, calendar_type, "hi");
    OFFSET(cal_quiet, calendar_type, "quiet");
    OFFSET(cal_keys, calendar_type, "keys");
    OFFSET(cs_request_id, credit_type, "request_id");
    OFFSET(cs_balance, credit_type, "balance");
    OFFSET(cs_credit_limit, credit_type, "credit_limit");
    OFFSET(dr_command_id, delivery_type, "command_id");
    OFFSET(dr_delivered, delivery_type, "delivered");
    OFFSET(dr_state, delivery_type, "state");
    OFFSET(camp_packages_prices, campaign_type, "prices");
    OFFSET(camp_payment, campaign_type, "payment");
    OFFSET(camp_sized, campaign_type, "sized");
    OFFSET(st_wait, step_type, "wait");
    OFFSET(rs_response_id, responded_type, "response_id");
    OFFSET(rs_msisdn, responded_type, "msisdn");
    OFFSET(rs_channel, responded_type, "channel");
    OFFSET(rs_offer_id, responded_type, "offer_id");
    OFFSET(rs_option_id, responded_type, "option_id");
    OFFSET(ac_offer_id, activated_type, "offer_id");
    OFFSET(ac_package_id, activated_type, "package_id");
    OFFSET(ac_payment, activated_type, "payment");
    OFFSET(ac_price, activated_type, "price");
    OFFSET(opt_package_id, option_type, "package_id");
    OFFSET(opt_price, option_type, "price");
    OFFSET(opt_payment, option_type, "payment");
    OFFSET(sub_responses, subscriber_type, "responses");
    OFFSET(sub_closed, subscriber_type, "closed");
    OFFSET(camp_texts, campaign_type, "texts");
    OFFSET(os_by_name, option_set_type, "by_name");
    OFFSET(os_names, option_set_type, "names");
    OFFSET(pu_profile, profile_updated_type, "profile");
    OFFSET(prof_packages, profile_type, "packages");
    OFFSET(prof_attributes, profile_type, "attributes");
    OFFSET(prof_msisdn, profile_type, "msisdn");
    OFFSET(dl_times, deadlines_type, "times");
    OFFSET(dl_ids, deadlines_type, "_ids");
    OFFSET(dl_unsorted, deadlines_type, "_unsorted");
    for (int i = 0; i < O_COUNT; i++) {
        OFFSET(offer_offsets[i], offer_type, offer_slot_names[i]);
    }
    /* every slot of _Offer is set by new_offer: a slot added to the class must be added here too */
    PyObject *slots = PyObject_GetAttrString((PyObject *)offer_type, "__slots__");
    if (slots == NULL) {
        return NULL;
    }
    Py_ssize_t declared = PyObject_Length(slots);
    Py_DECREF(slots);
    if (declared != O_COUNT) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError, "_Offer has %zd slots, _journey.c sets %d", declared, (int)O_COUNT);
        }
        return NULL;
    }
    off_deadline = offer_offsets[O_DEADLINE];
    off_queued = offer_offsets[O_QUEUED];
    off_state = offer_offsets[O_STATE];
    configured = 1;
    Py_RETURN_NONE;
}
#undef OFFSET

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_O,
     "configure(namespace): take the engine module's classes, record kinds, offer states and builders."},
    {"track_open_offers", (PyCFunction)(void (*)(void))track_open_offers, METH_FASTCALL,
     "track_open_offers(engine, subscriber): the collector walks the subscriber's open offers again when\n"
     "its profile is tracked (set by the Python path: it may refer to anything)."},
    {"blake2b", (PyCFunction)(void (*)(void))blake2b_py, METH_FASTCALL,
     "blake2b(data, digest_size) -> bytes: the BLAKE2b of the trigger path (hashlib's, unkeyed)."},
    {NULL, NULL, 0, NULL},
};

/* the engine paths: each spec, its call, and the class made from the spec when the module loads */
static struct {
    PyType_Spec *spec;
    vectorcallfunc call;
    PyTypeObject *type;
} paths[] = {
    {&dispatch_spec, dispatch_vectorcall, NULL},
    {&trigger_path_spec, trigger_path_vectorcall, NULL},
    {&tick_path_spec, tick_path_vectorcall, NULL},
    {&credit_path_spec, credit_path_vectorcall, NULL},
    {&delivery_path_spec, delivery_path_vectorcall, NULL},
    {&response_path_spec, response_path_vectorcall, NULL},
    {&activation_path_spec, activation_path_vectorcall, NULL},
    {&profile_path_spec, profile_path_vectorcall, NULL},
};

/* the call of a path class (the classes cannot be subclassed: one of these, or NULL) */
static vectorcallfunc
call_of(PyTypeObject *type)
{
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (paths[i].type == type) {
            return paths[i].call;
        }
    }
    return NULL;
}

static int
exec_module(PyObject *module)
{
    if (intern_names() < 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        paths[i].type = (PyTypeObject *)PyType_FromModuleAndSpec(module, paths[i].spec, NULL);
        if (paths[i].type == NULL || PyModule_AddType(module, paths[i].type) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "campaign_core._journey",
    "Optional C accelerator of the campaign engine's trigger path (see _journey.c).",
    0,
    module_methods,
    module_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__journey(void)
{
    return PyModuleDef_Init(&module_def);
}
