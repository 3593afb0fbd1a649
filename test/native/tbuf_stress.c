/* Test-only extension: a native writer and a native reader thread hammer the loop's triple buffer
 * (optimus_control/rt/src/rt_tbuf.h, header-only) to check that no read is torn or older than the one
 * before. Compiled by test/test_rt_channel.py into a temporary directory; not part of _rtcore. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <time.h>

#include "rt_tbuf.h"

typedef struct {
    rt_tbuf *t;
    long iterations, written;
    _Atomic int done;
    _Atomic long fresh_seen;
    long reads, fresh, torn, regressions;
} stress_ctx;

/* Writes at least `iterations` times, and on until the reader has taken 1000 fresh writes (threads on a
 * loaded machine may barely overlap at first), for at most 5 s. */
static void *stress_writer(void *arg) {
    stress_ctx *c = arg;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long i = 0;
    for (;;) {
        ++i;
        double *w = rt_tbuf_back(c->t);
        for (size_t k = 0; k < c->t->n; ++k) w[k] = (double)i;
        rt_tbuf_commit(c->t);
        if (i >= c->iterations && (i & 1023) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (atomic_load(&c->fresh_seen) >= 1000 || now.tv_sec - t0.tv_sec >= 5) break;
        }
    }
    c->written = i;
    atomic_store(&c->done, 1);
    return NULL;
}
static void *stress_reader(void *arg) {
    stress_ctx *c = arg;
    double last = 0.0;
    for (;;) {
        const int finished = atomic_load(&c->done);
        int fresh;
        const double *s = rt_tbuf_read(c->t, &fresh);
        c->reads++;
        c->fresh += fresh;
        if (fresh) atomic_store_explicit(&c->fresh_seen, c->fresh, memory_order_relaxed);
        for (size_t k = 1; k < c->t->n; ++k)
            if (s[k] != s[0]) {
                c->torn++;
                break;
            }
        if (s[0] < last) c->regressions++;
        last = s[0];
        if (finished && !fresh) break;
    }
    return NULL;
}

static PyObject *tbuf_stress(PyObject *mod, PyObject *args) {
    Py_ssize_t n;
    long iterations;
    if (!PyArg_ParseTuple(args, "nl:triple_buffer_stress", &n, &iterations)) return NULL;
    if (n < 1 || iterations < 1) {
        PyErr_SetString(PyExc_ValueError, "triple_buffer_stress(n, iterations): both must be >= 1");
        return NULL;
    }
    rt_tbuf t;
    if (rt_tbuf_init(&t, (size_t)n) < 0) return PyErr_NoMemory();
    stress_ctx c = {&t, iterations, 0, 0, 0, 0, 0, 0, 0};
    pthread_t w, r;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = pthread_create(&r, NULL, stress_reader, &c) == 0;
    if (ok) {
        if (pthread_create(&w, NULL, stress_writer, &c) == 0) {
            pthread_join(w, NULL);
        } else {
            atomic_store(&c.done, 1);
        }
        pthread_join(r, NULL);
    }
    Py_END_ALLOW_THREADS
    double final = rt_tbuf_read(&t, NULL)[0];
    rt_tbuf_free(&t);
    if (!ok) return PyErr_Format(PyExc_RuntimeError, "triple_buffer_stress: cannot create threads");
    return Py_BuildValue("{s:l,s:l,s:l,s:l,s:l,s:d}", "writes", c.written, "reads", c.reads, "fresh_reads", c.fresh,
                         "torn_reads", c.torn, "regressions", c.regressions, "final_value", final);
}

static PyMethodDef methods[] = {
    {"triple_buffer_stress", tbuf_stress, METH_VARARGS,
     "triple_buffer_stress(n, iterations) -> counts: a native writer publishes arrays of n copies of a counter\n"
     "while a native reader checks every read (torn_reads and regressions must be 0)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tbuf_stress", "Triple-buffer stress harness (tests only).",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__tbuf_stress(void) { return PyModule_Create(&module); }
