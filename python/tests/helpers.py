"""helpers — small pieces the tests share: a server thread."""
import threading


class Background(threading.Thread):
    """Run fn() in a thread; join() re-raises what it raised and returns
    its result (bounded: a hang fails the test instead of stalling it)."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self._fn = fn
        self._result = None
        self._error = None
        self.start()

    def run(self):
        try:
            self._result = self._fn()
        except BaseException as e:  # handed to the test's thread
            self._error = e

    def result(self, timeout=10):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the background part did not finish within %s s" % timeout)
        if self._error is not None:
            raise self._error
        return self._result
