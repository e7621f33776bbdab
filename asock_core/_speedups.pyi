# The compiled twin of asock_core.kernel_calls has that module's interface.
from .kernel_calls import KernelCalls as KernelCalls
from .kernel_calls import SocketState as SocketState
