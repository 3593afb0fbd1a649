/* optimus_control.rt._rtcore: module definition and the helpers shared by the bindings. */
#include "py_common.h"

#include <string.h>

PyObject *rtpy_RealTimeError = NULL;
PyObject *rtpy_BusInUseError = NULL;
PyObject *rtpy_np_empty = NULL;

int rtpy_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                    const char *const *names, int nnames, int required, PyObject **out) {
    for (int i = 0; i < nnames; ++i) out[i] = NULL;
    if (nargs > nnames) {
        PyErr_Format(rtpy_RealTimeError, "%s() takes at most %d arguments (%zd given)", fname, nnames, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
    if (kwnames) {
        const Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nkw; ++k) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, k);
            int found = 0;
            for (int i = 0; i < nnames; ++i) {
                if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
                    if (out[i]) {
                        PyErr_Format(rtpy_RealTimeError, "%s() got argument '%s' twice", fname, names[i]);
                        return -1;
                    }
                    out[i] = args[nargs + k];
                    found = 1;
                    break;
                }
            }
            if (!found) {
                PyErr_Format(rtpy_RealTimeError, "%s() got an unexpected keyword argument '%U'", fname, key);
                return -1;
            }
        }
    }
    for (int i = 0; i < required; ++i) {
        if (!out[i]) {
            PyErr_Format(rtpy_RealTimeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    for (int i = required; i < nnames; ++i)
        if (out[i] == Py_None) out[i] = NULL;
    return 0;
}

int rtpy_get_f64(PyObject *obj, Py_buffer *view, Py_ssize_t n, int writable, const char *fname, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(rtpy_RealTimeError, "%s(): %s must be a %sC-contiguous float64 array of %zd values, got %R",
                     fname, what, writable ? "writable " : "", n, (PyObject *)Py_TYPE(obj));
        return -1;
    }
    const char *fmt = view->format ? view->format : "B";
    if (fmt[0] == '<' || fmt[0] == '=' || fmt[0] == '@') fmt++;
    if (strcmp(fmt, "d") != 0 || view->itemsize != 8 || view->len != n * 8) {
        PyErr_Format(rtpy_RealTimeError,
                     "%s(): %s must be a C-contiguous float64 array of %zd values, got format '%s' with %zd bytes",
                     fname, what, n, view->format ? view->format : "B", view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyObject *rtpy_output(PyObject *out, PyObject *shape, Py_buffer *view, Py_ssize_t n, const char *fname) {
    if (out) {
        if (rtpy_get_f64(out, view, n, 1, fname, "out") < 0) return NULL;
        Py_INCREF(out);
        return out;
    }
    PyObject *arr = PyObject_CallOneArg(rtpy_np_empty, shape);
    if (!arr) return NULL;
    if (rtpy_get_f64(arr, view, n, 1, fname, "out") < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

int rtpy_get_int(PyObject *obj, long lo, long hi, const char *fname, const char *what, long *value) {
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(rtpy_RealTimeError, "%s(): %s must be an integer, got %R", fname, what, obj);
        return -1;
    }
    if (v < lo || v > hi) {
        PyErr_Format(rtpy_RealTimeError, "%s(): %s %ld is out of range [%ld, %ld]", fname, what, v, lo, hi);
        return -1;
    }
    *value = v;
    return 0;
}

static struct PyModuleDef rtcore_module = {
    PyModuleDef_HEAD_INIT, "_rtcore",
    "C core of optimus_control.rt: dynamics kernels, the real-time loop, transports (see rt/README.md).",
    -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__rtcore(void) {
    PyObject *m = PyModule_Create(&rtcore_module);
    if (!m) return NULL;
    PyObject *errors = PyImport_ImportModule("optimus_control.errors");
    if (!errors) goto fail;
    rtpy_RealTimeError = PyObject_GetAttrString(errors, "RealTimeError");
    rtpy_BusInUseError = PyObject_GetAttrString(errors, "BusInUseError");
    Py_DECREF(errors);
    if (!rtpy_RealTimeError || !rtpy_BusInUseError) goto fail;
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np) goto fail;
    rtpy_np_empty = PyObject_GetAttrString(np, "empty");
    Py_DECREF(np);
    if (!rtpy_np_empty) goto fail;
    if (rtpy_init_dynamics(m) < 0 || rtpy_init_loopback(m) < 0 || rtpy_init_shm(m) < 0 || rtpy_init_loop(m) < 0 ||
        rtpy_init_tbuf(m) < 0 || rtpy_init_bus(m) < 0 || rtpy_init_can(m) < 0 ||
        rtpy_init_emu(m) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
