/* _rtcore.LoopbackTransport: the robot emulated in-process, for tests and the benchmark. */
#include <string.h>

#include "py_transport.h"
#include "rt_tbuf.h"

static void loopback_dealloc(TransportObject *self) {
    if (self->staging) {
        rt_loopback_free(&self->lb);
        PyMem_Free(self->staging);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int loopback_init(TransportObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"n_joints", "n_feet", "dt_s", NULL};
    int n, nf;
    double dt = 0.001;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ii|d:LoopbackTransport", kwlist, &n, &nf, &dt)) return -1;
    if (n < 1 || nf < 0 || !(dt > 0)) {
        PyErr_Format(rtpy_RealTimeError, "LoopbackTransport: n_joints (%d) must be >= 1, n_feet (%d) >= 0, dt_s > 0",
                     n, nf);
        return -1;
    }
    if (self->staging) {
        PyErr_SetString(rtpy_RealTimeError, "LoopbackTransport is already initialised");
        return -1;
    }
    if (rt_loopback_init(&self->lb, n, nf, dt) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->staging = PyMem_Calloc((size_t)self->lb.n_words, sizeof(double));
    if (!self->staging) {
        rt_loopback_free(&self->lb);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(self->staging, self->lb.state_in.slots, sizeof(double) * (size_t)self->lb.n_words);
    rt_loopback_transport(&self->lb, &self->tr);
    return 0;
}

static PyObject *loopback_set_state(TransportObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames) {
    static const char *const names[] = {"q", "v", "tau_measured", "imu_orientation_xyzw", "imu_angular_velocity",
                                        "imu_linear_acceleration", "foot_wrench"};
    PyObject *o[7];
    if (rtpy_parse_args("set_state", args, nargs, kwnames, names, 7, 0, o) < 0) return NULL;
    const int n = self->lb.n_joints, nf = self->lb.n_feet;
    const int off[7] = {rt_sw_q(n), rt_sw_v(n), rt_sw_tau(n), rt_sw_quat(n), rt_sw_gyro(n), rt_sw_acc(n), rt_sw_feet(n)};
    const int len[7] = {n, n, n, 4, 3, 3, 6 * nf};
    for (int i = 0; i < 7; ++i) {
        if (!o[i]) continue;
        Py_buffer b;
        if (rtpy_get_f64(o[i], &b, len[i], 0, "set_state", names[i]) < 0) return NULL;
        memcpy(self->staging + off[i], b.buf, sizeof(double) * (size_t)len[i]);
        PyBuffer_Release(&b);
    }
    memcpy(rt_tbuf_back(&self->lb.state_in), self->staging, sizeof(double) * (size_t)self->lb.n_words);
    rt_tbuf_commit(&self->lb.state_in);
    Py_RETURN_NONE;
}

static PyObject *loopback_last_command(TransportObject *self, PyObject *unused) {
    if (atomic_load(&self->lb.command_out.writes) == 0) Py_RETURN_NONE;
    const double *w = rt_tbuf_read(&self->lb.command_out, NULL);
    const int n = self->lb.n_joints;
    PyObject *shape = Py_BuildValue("(i)", n);
    if (!shape) return NULL;
    Py_buffer out;
    PyObject *arr = rtpy_output(NULL, shape, &out, n, "last_command");
    Py_DECREF(shape);
    if (!arr) return NULL;
    memcpy(out.buf, w + 3, sizeof(double) * (size_t)n);
    PyBuffer_Release(&out);
    return Py_BuildValue("(LNii)", (long long)w[0], arr, (int)w[1], (int)w[2]);
}

static PyObject *loopback_get_silent(TransportObject *self, void *c) {
    return PyBool_FromLong(atomic_load(&self->lb.silent));
}
static int loopback_set_silent(TransportObject *self, PyObject *value, void *c) {
    int t = PyObject_IsTrue(value);
    if (t < 0) return -1;
    atomic_store(&self->lb.silent, t);
    return 0;
}

static PyMethodDef loopback_methods[] = {
    {"set_state", (PyCFunction)(void (*)(void))loopback_set_state, METH_FASTCALL | METH_KEYWORDS,
     "set_state(q=None, v=None, tau_measured=None, imu_orientation_xyzw=None, imu_angular_velocity=None,\n"
     "imu_linear_acceleration=None, foot_wrench=None): the state the emulated robot reports from now on\n"
     "(fields not given keep their value)."},
    {"last_command", (PyCFunction)loopback_last_command, METH_NOARGS,
     "last_command() -> (tick, tau, loop_state, reason) of the newest command, or None before any."},
    {NULL, NULL, 0, NULL},
};
static PyGetSetDef loopback_getset[] = {
    {"silent", (getter)loopback_get_silent, (setter)loopback_set_silent, "True: the robot stops sending states", NULL},
    {"n_joints", (getter)rtpy_transport_n_joints, NULL, NULL, NULL},
    {"n_feet", (getter)rtpy_transport_n_feet, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject rtpy_LoopbackType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.LoopbackTransport",
    .tp_basicsize = sizeof(TransportObject),
    .tp_dealloc = (destructor)loopback_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "LoopbackTransport(n_joints, n_feet, dt_s=0.001): the robot emulated in-process (see rt/README.md).",
    .tp_methods = loopback_methods,
    .tp_getset = loopback_getset,
    .tp_init = (initproc)loopback_init,
    .tp_new = PyType_GenericNew,
};


int rtpy_init_loopback(PyObject *module) {
    if (PyType_Ready(&rtpy_LoopbackType) < 0) return -1;
    Py_INCREF(&rtpy_LoopbackType);
    return PyModule_AddObject(module, "LoopbackTransport", (PyObject *)&rtpy_LoopbackType);
}
