"""What a console page can answer instead of itself: each an HTML error page (error.html) with
its status. The class's docstring is the message shown."""

from __future__ import annotations

from gateway import GatewayError


class PageError(GatewayError):
    """The page cannot be shown."""

    status: int = 400
    title: str = "Bad request"

    def __init__(
        self, message: str | None = None, *, status: int | None = None, title: str | None = None
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        super().__init__(self.message)


class NotFound(PageError):
    """There is nothing at this address."""

    status = 404
    title = "Not found"


class BadForm(PageError):
    """The form could not be read."""

    status = 400
    title = "Bad request"


class FormRefused(PageError):
    """The form was refused: its security token is missing or is not this session's (a form
    from another site, or from a session that has ended). Nothing was changed."""

    status = 403
    title = "Forbidden"


class SessionsUnavailable(PageError):
    """Console sessions are kept in Redis, which cannot be reached right now. The payment APIs
    are not affected; try again shortly."""

    status = 503
    title = "Console unavailable"


class DatabaseUnavailable(PageError):
    """The gateway cannot reach its database right now; try again shortly."""

    status = 503
    title = "Database unavailable"
