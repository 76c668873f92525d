"""numba compilation caching under featlab's cache directory, never inside the package.

numba's ``cache=True`` writes ``.nbi``/``.nbc`` files into the ``__pycache__`` beside the
source, i.e. into the installed package (it fails on a read-only install and dirties a
source checkout). :func:`cached_njit` compiles like ``numba.njit`` and caches in
``<featlab cache>/numba`` (``$FEATLAB_CACHE/numba``, default ``./cache/numba``) — or in
``$NUMBA_CACHE_DIR`` when the user set it. When neither is writable the kernels are simply
compiled in every process, without caching.
"""
from __future__ import annotations

import logging
import os

from .paths import default_cache_dir

log = logging.getLogger(__name__)


def numba_cache_dir() -> str:
    """Absolute directory the kernels are cached in."""
    return os.path.abspath(os.path.join(default_cache_dir(), "numba"))


def _cache_class():
    from numba.core import caching

    class FeatlabCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """Cache files of a function in :func:`numba_cache_dir`, keyed by its source path."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(numba_cache_dir(),
                                            self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

    class Impl(caching.CompileResultCacheImpl):
        _locator_classes = [caching.UserProvidedCacheLocator, FeatlabCacheLocator]

    class FeatlabFunctionCache(caching.FunctionCache):
        _impl_class = Impl

    return FeatlabFunctionCache


def cached_njit(**options):
    """``numba.njit(**options)`` with the cache of this module (``cache=`` is not accepted)."""
    from numba import njit

    def wrap(func):
        dispatcher = njit(**options)(func)
        try:
            dispatcher._cache = _cache_class()(dispatcher.py_func)
        except (RuntimeError, OSError, AttributeError, ImportError) as err:
            log.debug("numba kernels of %s are not cached (%s)", func.__module__, err)
        return dispatcher

    return wrap
