from django.conf import settings
from rest_framework.throttling import AnonRateThrottle


class LoginRateThrottle(AnonRateThrottle):
    """Limits password attempts per client address (`LOGIN_THROTTLE_RATE`, read per request)."""

    scope = "login"

    def get_rate(self) -> str:
        return settings.LOGIN_THROTTLE_RATE
