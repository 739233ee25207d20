/*
 * Optional C accelerator of protocols/_fast.py: builds instances of frozen, slotted dataclasses
 * (Python data model, "__slots__" and member descriptors) without running their __init__.
 *
 * A frozen dataclass's __init__ stores each field through object.__setattr__. Decoders and the
 * campaign engine build millions of them (PDUs, records, commands), so protocols/_fast.py builds a
 * plain twin and switches its __class__ (about 0.8 us on the CI machine for seven fields). A builder
 * from here allocates the instance with the class's own tp_alloc and stores each argument straight
 * into its slot (about 0.1 us). The result is the same object _fast.py makes: every slot set, in
 * the dataclass's field order, nothing else touched.
 *
 * builder(cls, names) checks once that each name is a writable object slot (a member descriptor of
 * type T_OBJECT_EX) of cls or one of its bases, and that cls is a heap type whose instances have no
 * __dict__ and use the default allocation: anything else raises TypeError and _fast.py keeps its
 * twin. The builder then takes exactly len(names) positional arguments.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyTypeObject *cls;
    Py_ssize_t count;
    Py_ssize_t offsets[1]; /* count of them (the allocation adds the rest) */
} Builder;

static PyTypeObject *builder_type; /* set by the module's exec slot; the module is never unloaded */

static PyObject *
builder_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Builder *self = (Builder *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != self->count || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_Format(PyExc_TypeError, "building %s takes exactly %zd positional arguments (%zd given)",
                     self->cls->tp_name, self->count, nargs);
        return NULL;
    }
    PyObject *obj = self->cls->tp_alloc(self->cls, 0); /* zeroed, GC-tracked, holds a reference to cls */
    if (obj == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject *value = args[i];
        Py_INCREF(value);
        *(PyObject **)((char *)obj + self->offsets[i]) = value;
    }
    return obj;
}

static PyObject *
builder_call(PyObject *callable, PyObject *args, PyObject *kwargs)
{
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "a builder takes positional arguments only");
        return NULL;
    }
    return builder_vectorcall(callable, &PyTuple_GET_ITEM(args, 0), (size_t)PyTuple_GET_SIZE(args), NULL);
}

static int
builder_traverse(Builder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cls);
    return 0;
}

static int
builder_clear(Builder *self)
{
    Py_CLEAR(self->cls);
    return 0;
}

static void
builder_dealloc(Builder *self)
{
    PyObject_GC_UnTrack(self);
    builder_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
builder_repr(Builder *self)
{
    return PyUnicode_FromFormat("<builder of %s>", self->cls->tp_name);
}

static PyMemberDef builder_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Builder, vectorcall), READONLY, NULL},
    {NULL},
};

static PyType_Slot builder_slots[] = {
    {Py_tp_call, builder_call},
    {Py_tp_traverse, builder_traverse},
    {Py_tp_clear, builder_clear},
    {Py_tp_dealloc, builder_dealloc},
    {Py_tp_repr, builder_repr},
    {Py_tp_members, builder_members},
    {0, NULL},
};

static PyType_Spec builder_spec = {
    .name = "protocols._slots.Builder",
    .basicsize = sizeof(Builder),
    .itemsize = sizeof(Py_ssize_t),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = builder_slots,
};

/* The offset of slot `name` of `cls`, or -1 with TypeError set. */
static Py_ssize_t
slot_offset(PyTypeObject *cls, PyObject *name)
{
    PyObject *descr = _PyType_Lookup(cls, name); /* borrowed, through the MRO */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%s.%R is not a slot", cls->tp_name, name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY) ||
        !PyType_IsSubtype(cls, ((PyDescrObject *)descr)->d_type) || member->offset <= 0 ||
        member->offset + (Py_ssize_t)sizeof(PyObject *) > cls->tp_basicsize) {
        PyErr_Format(PyExc_TypeError, "%s.%R is not a writable object slot", cls->tp_name, name);
        return -1;
    }
    return member->offset;
}

static PyObject *
builder(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "builder(cls, names): a class and a tuple of slot names");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    PyObject *names = args[1];
    if (!(cls->tp_flags & Py_TPFLAGS_HEAPTYPE) || cls->tp_dictoffset != 0 || cls->tp_itemsize != 0 ||
        cls->tp_alloc != PyType_GenericAlloc) {
        PyErr_Format(PyExc_TypeError, "%s is not a plain slotted class", cls->tp_name);
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    Builder *self = PyObject_GC_NewVar(Builder, builder_type, count);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = builder_vectorcall;
    self->count = count;
    Py_INCREF(cls);
    self->cls = cls;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "slot names must be strings");
            Py_DECREF(self);
            return NULL;
        }
        Py_ssize_t offset = slot_offset(cls, name);
        if (offset < 0) {
            Py_DECREF(self);
            return NULL;
        }
        for (Py_ssize_t j = 0; j < i; j++) {
            if (self->offsets[j] == offset) {
                PyErr_Format(PyExc_TypeError, "slot %R named twice", name);
                Py_DECREF(self);
                return NULL;
            }
        }
        self->offsets[i] = offset;
    }
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyMethodDef methods[] = {
    {"builder", (PyCFunction)(void (*)(void))builder, METH_FASTCALL,
     "builder(cls, names) -> a callable building cls from one positional argument per slot name"},
    {NULL, NULL, 0, NULL},
};

static int
exec_module(PyObject *module)
{
    if (builder_type == NULL) {
        builder_type = (PyTypeObject *)PyType_FromSpec(&builder_spec);
        if (builder_type == NULL) {
            return -1;
        }
    }
    Py_INCREF(builder_type);
    if (PyModule_AddObject(module, "Builder", (PyObject *)builder_type) < 0) {
        Py_DECREF(builder_type);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "protocols._slots",
    .m_doc = "Builders of frozen, slotted dataclass instances (see protocols/_fast.py).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = module_slots,
};

PyMODINIT_FUNC
PyInit__slots(void)
{
    return PyModuleDef_Init(&module_def);
}
