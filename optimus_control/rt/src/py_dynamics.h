/* The Python object wrapping an rt_model; the loop binding reads its model to clone it. */
#ifndef OPTIMUS_RT_PY_DYNAMICS_H
#define OPTIMUS_RT_PY_DYNAMICS_H

#include "py_common.h"
#include "rt_dynamics.h"

typedef struct {
    PyObject_HEAD
    rt_model *m;
    double *fext;
    PyObject *shape_v, *shape_M, *shape_J, *shape_44;
} ModelObject;

extern PyTypeObject rtpy_ModelType;

#endif
