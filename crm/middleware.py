"""Sets `request.actor` for every request (the API refines it with the resolved tenant)."""

from collections.abc import Callable
from typing import cast

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from crm.actor import Actor, Source
from crm.request import ActorHttpRequest


def actor_for_request(request: HttpRequest, *, source: str = Source.API) -> Actor:
    """The request's actor. An impersonation middleware sets `request.real_user` to the admin."""
    user = request.user if request.user.is_authenticated else None
    real_user = getattr(request, "real_user", None) or user
    return Actor(tenant=getattr(request, "tenant", None), user=user, real_user=real_user, source=source)


class ActorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The lazy object stands in for the Actor it builds on first use.
        cast(ActorHttpRequest, request).actor = cast(Actor, SimpleLazyObject(lambda: actor_for_request(request)))
        return self.get_response(request)
