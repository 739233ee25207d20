/*
 * The object heap on transparent huge pages: an arena allocator for CPython's pymalloc (C API,
 * "Customize pymalloc Arena Allocator": PyObject_SetArenaAllocator) that carves pymalloc's arenas out
 * of one reserved range advised MADV_HUGEPAGE (madvise(2); the kernel's admin guide, "Transparent
 * Hugepage Support": in its `madvise` mode only advised ranges get huge pages).
 *
 * Why: at 1M subscribers the campaign engine's state is a gigabyte of small objects (subscribers,
 * offers, their dict entries) that every event reaches in no order memory knows of. With 4 KiB pages
 * each such read is a TLB miss as well as a cache miss, and under a hypervisor's nested paging a page
 * walk is itself a chain of misses. With 2 MiB pages 512 times as much of it is within the TLB's
 * reach (measured: gateway/runtime.py, use_huge_pages).
 *
 * How: pymalloc asks for arenas of ARENA_SIZE (1 MiB on 64-bit builds of 3.10-3.13) one at a time and
 * gives each back when its last object dies. install() reserves `reserve` bytes of address space
 * (MAP_NORESERVE: nothing is committed until touched), aligned to 2 MiB, and advises it. Arenas are
 * handed out from its start; two arenas make one huge page (a "block"). A freed arena is kept for reuse
 * (LIFO, so the next arena is likely still in cache and resident): touching fresh pages costs a fault
 * and the kernel zeroing them, which a burst (one Tick's 600k commands) otherwise pays again each time.
 * Kept free memory is bounded: once more than `hold` bytes of freed arenas are resident, a block whose
 * two arenas are both free is handed back to the kernel whole (MADV_DONTNEED on the 2 MiB), so the huge
 * page is released, not split. Arenas of another size, and arenas once the range is used up, come from
 * the allocator that was installed before (pymalloc's mmap), and go back to it.
 *
 * Only ever installed once per process, and never removed: arenas in use must be freed by the allocator
 * that made them, and the allocator installed before keeps freeing its own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#define ARENA ((size_t)1 << 20) /* pymalloc's ARENA_SIZE with USE_LARGE_ARENAS (64-bit builds) */
#define BLOCK ((size_t)2 << 20) /* one huge page on x86-64 and arm64 (4 KiB base pages) */
#define HALVES (BLOCK / ARENA)

enum { HALF0 = 1, HALF1 = 2, RELEASED = 4 };

static struct {
    int installed;
    char *base, *carved, *end;   /* the advised range; arenas below `carved` have been handed out */
    unsigned char *blocks;       /* per block: which halves are in use, and RELEASED */
    uint32_t *free_stack;        /* indexes of free arenas below `carved` (LIFO) */
    size_t free_count;
    size_t hold;                 /* resident free bytes kept before whole blocks are released */
    size_t resident_free;        /* bytes of free arenas in blocks not released */
    /* counters for stats() */
    size_t in_use, peak, reused, released_blocks, other_allocs, other_frees;
    PyObjectArenaAllocator before;
} heap;

static inline size_t
arena_index(const char *p)
{
    return (size_t)(p - heap.base) / ARENA;
}

static void *
arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size == ARENA) {
        char *p = NULL;
        if (heap.free_count > 0) {
            size_t index = heap.free_stack[--heap.free_count];
            p = heap.base + index * ARENA;
            unsigned char *block = &heap.blocks[index / HALVES];
            if (*block & RELEASED) {
                /* the kernel gives the block back as one fresh huge page on the first touch: the
                 * other half is resident again too */
                *block &= (unsigned char)~RELEASED;
                if (!(*block & (index % HALVES ? HALF0 : HALF1))) {
                    heap.resident_free += ARENA;
                }
            } else {
                heap.resident_free -= ARENA;
            }
            *block |= (unsigned char)(index % HALVES ? HALF1 : HALF0);
            heap.reused++;
        } else if (heap.carved + ARENA <= heap.end) {
            p = heap.carved;
            heap.carved += ARENA;
            size_t index = arena_index(p);
            unsigned char *block = &heap.blocks[index / HALVES];
            if (*block & RELEASED) { /* its first half was freed and released before this one was carved */
                *block &= (unsigned char)~RELEASED;
                heap.resident_free += ARENA;
            }
            *block |= (unsigned char)(index % HALVES ? HALF1 : HALF0);
        }
        if (p != NULL) {
            if (++heap.in_use > heap.peak) {
                heap.peak = heap.in_use;
            }
            return p;
        }
    }
    void *p = heap.before.alloc(heap.before.ctx, size);
    if (p != NULL) {
        heap.other_allocs++;
    }
    return p;
}

static void
arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    char *p = ptr;
    if (p < heap.base || p >= heap.carved) {
        heap.before.free(heap.before.ctx, ptr, size);
        heap.other_frees++; /* including arenas made before install() */
        return;
    }
    size_t index = arena_index(p);
    unsigned char *block = &heap.blocks[index / HALVES];
    *block &= (unsigned char)~(index % HALVES ? HALF1 : HALF0);
    heap.free_stack[heap.free_count++] = (uint32_t)index;
    heap.in_use--;
    heap.resident_free += ARENA;
    if (heap.resident_free > heap.hold && (*block & (HALF0 | HALF1)) == 0) {
        char *start = heap.base + (index / HALVES) * BLOCK;
        /* on failure the block simply stays resident */
        if (madvise(start, BLOCK, MADV_DONTNEED) == 0) {
            *block |= RELEASED;
            /* its halves handed out so far were resident and free (the last block's second half may
             * not have been carved yet) */
            for (size_t half = 0; half < HALVES; half++) {
                if (start + half * ARENA < heap.carved) {
                    heap.resident_free -= ARENA;
                }
            }
            heap.released_blocks++;
        }
    }
}

PyDoc_STRVAR(install_doc,
             "install(reserve, hold) -> int\n\n"
             "Reserve `reserve` bytes (rounded down to 2 MiB; tried smaller, halving down to 64 MiB, if the\n"
             "kernel refuses), advise them MADV_HUGEPAGE and make them pymalloc's arenas. Freed arenas up to\n"
             "`hold` bytes stay resident for reuse. The bytes reserved; 0 if it was installed already.\n"
             "OSError if no range could be reserved or advised (nothing changed then).");

static PyObject *
install(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "install(reserve, hold) takes two arguments");
        return NULL;
    }
    Py_ssize_t reserve = PyLong_AsSsize_t(args[0]);
    if (reserve == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t hold = PyLong_AsSsize_t(args[1]);
    if (hold == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (reserve < (Py_ssize_t)BLOCK || hold < 0) {
        PyErr_Format(PyExc_ValueError, "reserve must be at least %zu bytes and hold not negative", BLOCK);
        return NULL;
    }
    if (heap.installed) {
        return PyLong_FromLong(0);
    }
    size_t size = (size_t)reserve / BLOCK * BLOCK;
    /* the index of an arena is kept in 32 bits */
    if (size / ARENA > UINT32_MAX) {
        size = (size_t)UINT32_MAX / HALVES * BLOCK;
    }
    char *raw = MAP_FAILED;
    for (;;) {
        raw = mmap(NULL, size + BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (raw != MAP_FAILED || size <= 32 * BLOCK) {
            break;
        }
        size = size / 2 / BLOCK * BLOCK; /* a strict overcommit policy refuses large reservations */
    }
    if (raw == MAP_FAILED) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    char *base = (char *)(((uintptr_t)raw + BLOCK - 1) & ~(uintptr_t)(BLOCK - 1));
    /* the unaligned ends are never used: give them back */
    if (base > raw) {
        munmap(raw, (size_t)(base - raw));
    }
    if (raw + size + BLOCK > base + size) {
        munmap(base + size, (size_t)(raw + size + BLOCK - (base + size)));
    }
    if (madvise(base, size, MADV_HUGEPAGE) != 0) {
        int saved = errno;
        munmap(base, size);
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    unsigned char *blocks = PyMem_RawCalloc(size / BLOCK, 1);
    uint32_t *free_stack = PyMem_RawMalloc(size / ARENA * sizeof(uint32_t));
    if (blocks == NULL || free_stack == NULL) {
        PyMem_RawFree(blocks);
        PyMem_RawFree(free_stack);
        munmap(base, size);
        return PyErr_NoMemory();
    }
    heap.base = heap.carved = base;
    heap.end = base + size;
    heap.blocks = blocks;
    heap.free_stack = free_stack;
    heap.hold = (size_t)hold;
    PyObject_GetArenaAllocator(&heap.before);
    PyObjectArenaAllocator mine = {NULL, arena_alloc, arena_free};
    PyObject_SetArenaAllocator(&mine);
    heap.installed = 1;
    return PyLong_FromSize_t(size);
}

PyDoc_STRVAR(stats_doc,
             "stats() -> dict\n\n"
             "installed (0/1), base (the range's address), reserved, carved (bytes handed out at least once),\n"
             "in_use and peak (arenas), reused (arenas taken from the free ones), free (arenas),\n"
             "resident_free (bytes), hold, released_blocks (2 MiB blocks given back to the kernel),\n"
             "other_allocs and other_frees (arenas made and freed by the allocator installed before, its frees\n"
             "counting arenas made before install()).");

static PyObject *
stats(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return Py_BuildValue(
        "{s:i,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n}", "installed", heap.installed, "base",
        (Py_ssize_t)(uintptr_t)heap.base, "reserved", (Py_ssize_t)(heap.end - heap.base), "carved",
        (Py_ssize_t)(heap.carved - heap.base), "in_use", (Py_ssize_t)heap.in_use, "peak", (Py_ssize_t)heap.peak,
        "reused", (Py_ssize_t)heap.reused, "free", (Py_ssize_t)heap.free_count, "resident_free",
        (Py_ssize_t)heap.resident_free, "hold", (Py_ssize_t)heap.hold, "released_blocks",
        (Py_ssize_t)heap.released_blocks, "other_allocs", (Py_ssize_t)heap.other_allocs, "other_frees",
        (Py_ssize_t)heap.other_frees);
}

static PyMethodDef methods[] = {
    {"install", (PyCFunction)(void (*)(void))install, METH_FASTCALL, install_doc},
    {"stats", stats, METH_NOARGS, stats_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway._hugeheap", "pymalloc's arenas on transparent huge pages (see the C source).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__hugeheap(void)
{
    return PyModule_Create(&module_def);
}
