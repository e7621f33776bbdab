/* The C layout of asock_core.kernel_calls.SocketState, shared by the
 * extension's two files (_speedups.c, _async_calls.c). */
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

#endif
