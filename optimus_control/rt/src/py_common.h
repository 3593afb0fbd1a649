/* Shared helpers of the Python bindings: argument parsing for vectorcall methods, float64 buffers
 * through the buffer protocol (no numpy headers), output arrays through a cached numpy.empty. */
#ifndef OPTIMUS_RT_PY_COMMON_H
#define OPTIMUS_RT_PY_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

extern PyObject *rtpy_RealTimeError; /* optimus_control.errors.RealTimeError */
extern PyObject *rtpy_BusInUseError; /* optimus_control.errors.BusInUseError */
extern PyObject *rtpy_np_empty;      /* numpy.empty */

/* Parses positional + keyword arguments of a METH_FASTCALL|METH_KEYWORDS method into out[0..nnames-1]
 * (NULL when absent). The first `required` names must be given. Returns 0, or -1 with an exception. */
int rtpy_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                    const char *const *names, int nnames, int required, PyObject **out);

/* Gets a C-contiguous float64 buffer holding exactly n values. Returns 0, or -1 with an exception
 * naming fname and what. */
int rtpy_get_f64(PyObject *obj, Py_buffer *view, Py_ssize_t n, int writable, const char *fname, const char *what);

/* Returns `out` (new reference, after checking it) or a new numpy.empty(shape); fills view. */
PyObject *rtpy_output(PyObject *out, PyObject *shape, Py_buffer *view, Py_ssize_t n, const char *fname);

/* Reads an int with __index__; -1 with an exception (naming fname/what) on failure. */
int rtpy_get_int(PyObject *obj, long lo, long hi, const char *fname, const char *what, long *value);

int rtpy_init_dynamics(PyObject *module);
int rtpy_init_loopback(PyObject *module);
int rtpy_init_shm(PyObject *module);
int rtpy_init_loop(PyObject *module);
int rtpy_init_tbuf(PyObject *module);
int rtpy_init_bus(PyObject *module);
int rtpy_init_can(PyObject *module);
int rtpy_init_emu(PyObject *module);

#endif
