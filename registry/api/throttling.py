"""Who a request comes from, and how often it may fail to authenticate."""

from django.http import HttpRequest
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle, UserRateThrottle


def client_address(request: HttpRequest) -> str:
    """The client's address: the last proxy's X-Forwarded-For entry with PEDIGREE_BEHIND_PROXY
    (DRF's NUM_PROXIES), else the connection's, so a client cannot pick its own."""
    return BaseThrottle().get_ident(request)  # type: ignore[arg-type]


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """Answers 401 per client address, at PEDIGREE_THROTTLE_ANON. DRF refuses a missing or wrong
    token before its throttles run, so they alone would never slow a token guesser; once an
    address has spent this budget, no credential it sends is checked until the window passes."""

    scope = "anon"
    num_requests: int  # set from the rate by SimpleRateThrottle.__init__
    duration: int

    def get_rate(self) -> str:
        # Read at each request, not once at import as DRF's throttles do, so settings apply.
        return str(api_settings.DEFAULT_THROTTLE_RATES[self.scope])

    def get_cache_key(self, request, view) -> str:
        return f"throttle_failed_auth_{client_address(request)}"

    def exhausted(self, request) -> bool:
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) >= self.num_requests

    def record_failure(self, request) -> None:
        self.exhausted(request)
        self.throttle_success()  # stores this failure in the address's history


class TokenRateThrottle(UserRateThrottle):
    """DRF's per-user throttle (PEDIGREE_THROTTLE_USER), counting each budget's window from its
    first request: the cache holds (window start, count) instead of DRF's list of the time of
    every request in the window, which each request read, unpickled, pickled and wrote back
    whole (thousands of entries at a busy client's rate; a tenth of a read's CPU)."""

    # Not DRF's key: a cache written by DRF's throttle before an upgrade holds lists there.
    cache_format = "throttle_window_%(scope)s_%(ident)s"
    num_requests: int  # set from the rate by SimpleRateThrottle.__init__
    duration: int
    window_end: float

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        start, count = self.cache.get(self.key, (self.now, 0))
        if self.now - start >= self.duration:
            start, count = self.now, 0
        self.window_end = start + self.duration
        if count >= self.num_requests:
            return False
        self.cache.set(self.key, (start, count + 1), self.window_end - self.now)
        return True

    def wait(self) -> float:
        return max(self.window_end - self.now, 0.0)
