"""The stress core: writer threads and the watchdog's reader on shared
slots (``run``), the report that decides the verdict (``report``), the
slot array (``slots``), the torn kinds (``classify``), CPU placement
(``placement``), the jiffies clock (``clock``) and the verdict on the
compiled binary (``binverdict``, reading ``objorder``).

``kmallocwd.stress(...)`` stays the API's function (kmallocwd.api.stress):
this package, once imported, is the attribute ``kmallocwd.stress``, so it
is callable, with the API's signature."""

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from kmallocwd.api import stress

        return stress(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
