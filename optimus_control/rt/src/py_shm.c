/* _rtcore.ShmTransport: the controller side of the shared-memory joint bus. */
#include "py_transport.h"

static void shm_dealloc(TransportObject *self) {
    if (self->shm) rt_shm_close(self->shm);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int shm_init(TransportObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"name", "n_joints", "n_feet", NULL};
    const char *name;
    int n, nf;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sii:ShmTransport", kwlist, &name, &n, &nf)) return -1;
    if (self->shm) {
        PyErr_SetString(rtpy_RealTimeError, "ShmTransport is already open");
        return -1;
    }
    char err[512] = "";
    int owned;
    self->shm = rt_shm_open(name, n, nf, &owned, err, sizeof(err));
    if (!self->shm) {
        PyErr_SetString(owned ? rtpy_BusInUseError : rtpy_RealTimeError, err);
        return -1;
    }
    rt_shm_transport(self->shm, &self->tr);
    self->name = PyUnicode_FromString(name);
    return self->name ? 0 : -1;
}

static PyObject *shm_close(TransportObject *self, PyObject *unused) {
    if (self->in_use) {
        PyErr_SetString(rtpy_RealTimeError, "ShmTransport.close(): a Loop still uses this transport");
        return NULL;
    }
    if (self->shm) {
        rt_shm_close(self->shm);
        self->shm = NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *shm_get_name(TransportObject *self, void *c) {
    if (!self->name) Py_RETURN_NONE;
    Py_INCREF(self->name);
    return self->name;
}
static PyObject *shm_get_open(TransportObject *self, void *c) { return PyBool_FromLong(self->shm != NULL); }

static PyMethodDef shm_methods[] = {
    {"close", (PyCFunction)shm_close, METH_NOARGS, "close(): unmap the segment (it stays for the robot side)."},
    {NULL, NULL, 0, NULL},
};
static PyGetSetDef shm_getset[] = {
    {"name", (getter)shm_get_name, NULL, "segment name", NULL},
    {"is_open", (getter)shm_get_open, NULL, NULL, NULL},
    {"n_joints", (getter)rtpy_transport_n_joints, NULL, NULL, NULL},
    {"n_feet", (getter)rtpy_transport_n_feet, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
PyTypeObject rtpy_ShmType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.ShmTransport",
    .tp_basicsize = sizeof(TransportObject),
    .tp_dealloc = (destructor)shm_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ShmTransport(name, n_joints, n_feet): controller side of the shared-memory joint bus.",
    .tp_methods = shm_methods,
    .tp_getset = shm_getset,
    .tp_init = (initproc)shm_init,
    .tp_new = PyType_GenericNew,
};

int rtpy_init_shm(PyObject *module) {
    if (PyType_Ready(&rtpy_ShmType) < 0) return -1;
    Py_INCREF(&rtpy_ShmType);
    return PyModule_AddObject(module, "ShmTransport", (PyObject *)&rtpy_ShmType);
}
