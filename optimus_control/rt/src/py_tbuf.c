/* _rtcore.TripleBuffer: the loop's lock-free reference channel, exposed for tests. */
#include "py_common.h"
#include "rt_tbuf.h"

typedef struct {
    PyObject_HEAD
    rt_tbuf t;
    int ok;
} TBufObject;

static void tbuf_dealloc(TBufObject *self) {
    if (self->ok) rt_tbuf_free(&self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}
static int tbuf_init(TBufObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"n", NULL};
    Py_ssize_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n:TripleBuffer", kwlist, &n)) return -1;
    if (n < 1 || self->ok) {
        PyErr_SetString(rtpy_RealTimeError, "TripleBuffer(n): n must be >= 1 (and init once)");
        return -1;
    }
    if (rt_tbuf_init(&self->t, (size_t)n) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->ok = 1;
    return 0;
}
/* write/read release the GIL around the copy so Python threads really overlap in tests. Exactly one
 * thread may write and one may read (the channel's contract). */
static PyObject *tbuf_write(TBufObject *self, PyObject *arg) {
    Py_buffer b;
    if (rtpy_get_f64(arg, &b, (Py_ssize_t)self->t.n, 0, "TripleBuffer.write", "values") < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    memcpy(rt_tbuf_back(&self->t), b.buf, sizeof(double) * self->t.n);
    rt_tbuf_commit(&self->t);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}
static PyObject *tbuf_read(TBufObject *self, PyObject *arg) {
    Py_buffer b;
    if (rtpy_get_f64(arg, &b, (Py_ssize_t)self->t.n, 1, "TripleBuffer.read", "out") < 0) return NULL;
    int fresh;
    Py_BEGIN_ALLOW_THREADS
    const double *s = rt_tbuf_read(&self->t, &fresh);
    memcpy(b.buf, s, sizeof(double) * self->t.n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyBool_FromLong(fresh);
}
static PyMethodDef tbuf_methods[] = {
    {"write", (PyCFunction)tbuf_write, METH_O, "write(values): publish n doubles (single writer)"},
    {"read", (PyCFunction)tbuf_read, METH_O, "read(out) -> fresh: copy the latest write into out (single reader)"},
    {NULL, NULL, 0, NULL},
};
static PyTypeObject TBufType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.TripleBuffer",
    .tp_basicsize = sizeof(TBufObject),
    .tp_dealloc = (destructor)tbuf_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TripleBuffer(n): the loop's lock-free reference channel, exposed for tests.",
    .tp_methods = tbuf_methods,
    .tp_init = (initproc)tbuf_init,
    .tp_new = PyType_GenericNew,
};

int rtpy_init_tbuf(PyObject *module) {
    if (PyType_Ready(&TBufType) < 0) return -1;
    Py_INCREF(&TBufType);
    return PyModule_AddObject(module, "TripleBuffer", (PyObject *)&TBufType);
}
