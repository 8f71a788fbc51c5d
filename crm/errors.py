"""Domain errors: services raise them, the API's exception handler turns them into 4xx."""

from http import HTTPStatus


class ApplicationError(Exception):
    """A business rule refused the request (400 unless a subclass says otherwise).

    `attr` names the offending field, so the API (and the admin) can show it there.
    Several problems found at once go in `messages` (one API error each, all on `attr`);
    `message` is then their first.
    """

    status_code = HTTPStatus.BAD_REQUEST
    default_code = "invalid"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        attr: str | None = None,
        messages: list[str] | None = None,
    ) -> None:
        if message is None and not messages:
            raise ValueError("an ApplicationError needs a message or messages")
        self.messages: list[str] = list(messages) if messages else [message or ""]
        self.message: str = message if message is not None else self.messages[0]
        super().__init__(self.message)
        self.code = code or self.default_code
        self.attr = attr


class Conflict(ApplicationError):
    """The request is valid but clashes with the current state of the data (409)."""

    status_code = HTTPStatus.CONFLICT
    default_code = "conflict"


class NotFound(ApplicationError):
    """The row is gone (deleted while the request was under way): 404, as if it never existed."""

    status_code = HTTPStatus.NOT_FOUND
    default_code = "not_found"


class Forbidden(ApplicationError):
    status_code = HTTPStatus.FORBIDDEN
    default_code = "permission_denied"
