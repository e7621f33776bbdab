# The compiled twins of asock_core.kernel_calls and asock_core.async_calls
# have those modules' interfaces.
from collections.abc import Awaitable
from types import ModuleType
from typing import Any

from .async_calls import AsyncCalls as _PythonAsyncCalls
from .kernel_calls import KernelCalls as KernelCalls
from .kernel_calls import SocketState as SocketState

def trap_wait(trap: object, /) -> Awaitable[Any]: ...

class AsyncCalls(_PythonAsyncCalls):
    @classmethod
    def _link(cls, operations: ModuleType, /) -> bool: ...
