/* What the extension's files (_speedups.c, _async_calls.c, _trap_wait.c)
 * share: the C layout of asock_core.kernel_calls.SocketState, each file's
 * initialiser, and how an awaitable's send() reports a step. */
#ifndef ASOCK_SOCKET_STATE_H
#define ASOCK_SOCKET_STATE_H
#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyObject *sock;     /* _sock: the stdlib socket */
    PyObject *timeout;  /* _timeout: None, 0.0 or a float */
    Py_ssize_t busy;    /* _busy: calls under way */
    char closing;       /* _closing: close() has begun */
} SocketState;

/* Adds AsyncCalls (a subclass of `state`) to the module; 0 on success. */
int async_calls_init(PyObject *module, PyTypeObject *state);
/* Adds trap_wait (the trio hub's wait) to the module; 0 on success. */
int trap_wait_init(PyObject *module);

/* A step's outcome as send() and __next__ report it: the value yielded, or
   NULL with StopIteration(value) set for a return (or the error, as set). */
static inline PyObject *
as_method_result(PySendResult status, PyObject *result)
{
    if (status == PYGEN_NEXT) {
        return result;
    }
    if (status == PYGEN_RETURN) {
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
        Py_DECREF(result);
        if (stop != NULL) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
    }
    return NULL;
}

/* An awaitable's three ways in, around its step function
   `PySendResult step(Self *self, PyObject *arg, PyObject **result)`:
   PREFIX_am_send (tp_as_async), PREFIX_iternext (__next__) and PREFIX_send
   (send()). */
#define AWAITABLE_ENTRIES(PREFIX, Self, step)                                  \
    static PySendResult PREFIX##_am_send(Self *self, PyObject *arg,            \
                                         PyObject **result)                    \
    {                                                                          \
        return step(self, arg, result);                                        \
    }                                                                          \
    static PyObject *PREFIX##_iternext(Self *self)                             \
    {                                                                          \
        PyObject *result;                                                      \
        PySendResult status = step(self, Py_None, &result);                    \
        return as_method_result(status, result);                               \
    }                                                                          \
    static PyObject *PREFIX##_send(Self *self, PyObject *arg)                  \
    {                                                                          \
        PyObject *result;                                                      \
        PySendResult status = step(self, arg, &result);                        \
        return as_method_result(status, result);                               \
    }

#endif
